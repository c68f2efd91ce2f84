-- Version 1: raw landing tables, load bookkeeping, staging and marts schemas.
-- Report columns follow connectors/reports.py through column_name(); tests keep them in step.

create schema if not exists raw;
create schema if not exists staging;
create schema if not exists marts;

create table raw.ga_acquisition (
    property_id                        varchar     not null,
    partition_month                    date        not null,
    first_session_date                 date,
    first_user_default_channel_group   varchar,
    first_user_source                  varchar,
    first_user_medium                  varchar,
    first_user_campaign_name           varchar,
    new_users                          bigint,
    load_id                            varchar     not null,
    loaded_at                          timestamptz not null,
    currency_code                      varchar,
    time_zone                          varchar,
    data_loss_from_other_row           boolean,
    subject_to_thresholding            boolean
);

create table raw.ga_cohort_activity (
    property_id                        varchar     not null,
    partition_month                    date        not null,
    "date"                             date,
    first_session_date                 date,
    first_user_default_channel_group   varchar,
    first_user_source                  varchar,
    first_user_medium                  varchar,
    first_user_campaign_name           varchar,
    total_revenue                      double,
    purchase_revenue                   double,
    transactions                       bigint,
    ecommerce_purchases                bigint,
    sessions                           bigint,
    screen_page_views                  bigint,
    user_engagement_duration           double,
    load_id                            varchar     not null,
    loaded_at                          timestamptz not null,
    currency_code                      varchar,
    time_zone                          varchar,
    data_loss_from_other_row           boolean,
    subject_to_thresholding            boolean
);

-- The latest successful load of each (property, partition, report); models read it to know
-- which partitions exist.
create table raw.ga_loads (
    load_id                            varchar     not null,
    property_id                        varchar     not null,
    partition_month                    date        not null,
    report                             varchar     not null,
    window_start                       date        not null,
    window_end                         date        not null,
    rows_reported                      bigint      not null,
    rows_landed                        bigint      not null,
    pages                              integer     not null,
    requests                           integer     not null,
    quota_tokens_used                  bigint,
    quota_tokens_remaining_daily       bigint,
    quota_tokens_remaining_hourly      bigint,
    currency_code                      varchar,
    time_zone                          varchar,
    data_loss_from_other_row           boolean     not null,
    subject_to_thresholding            boolean     not null,
    sampling_metadata                  varchar,
    is_final                           boolean     not null,
    loaded_at                          timestamptz not null,
    primary key (property_id, partition_month, report)
);

-- Every successful load, appended, for audit: when a partition was reloaded and what changed.
create table raw.ga_load_history as
select *
  from raw.ga_loads
  with no data;
