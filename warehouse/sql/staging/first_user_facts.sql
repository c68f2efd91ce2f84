-- Both raw reports in one long shape, one row per first-user dimension: the only place that
-- maps the GA first-user columns to the dimension names the marts use. Days are summed into
-- months first (every metric here is additive), so the unpivot copies a month's groups four
-- times rather than every raw row. include nulls keeps a row whose dimension value is
-- missing, so its users and revenue still count. Money and seconds are summed as exact
-- decimals (GA sends at most six places), so the marts do not depend on the order rows were
-- loaded in: a resumed or parallel backfill gives the same figures to the last bit.
create or replace table staging.first_user_facts as
with acquisition as (
    select 'acquisition'                                           as report,
           property_id,
           cast(date_trunc('month', first_session_date) as date)   as cohort_month,
           cast(null as date)                                      as activity_month,
           first_user_default_channel_group,
           first_user_source,
           first_user_medium,
           first_user_campaign_name,
           sum(new_users)                                          as new_users
      from raw.ga_acquisition
     group by property_id,
              cohort_month,
              first_user_default_channel_group,
              first_user_source,
              first_user_medium,
              first_user_campaign_name
),

activity as (
    select 'cohort_activity'                                       as report,
           property_id,
           cast(date_trunc('month', first_session_date) as date)   as cohort_month,
           partition_month                                         as activity_month,
           first_user_default_channel_group,
           first_user_source,
           first_user_medium,
           first_user_campaign_name,
           sum(cast(total_revenue as decimal(38, 6)))              as total_revenue,
           sum(cast(purchase_revenue as decimal(38, 6)))           as purchase_revenue,
           sum(transactions)                                       as transactions,
           sum(ecommerce_purchases)                                as ecommerce_purchases,
           sum(sessions)                                           as sessions,
           sum(screen_page_views)                                  as screen_page_views,
           sum(cast(user_engagement_duration as decimal(38, 6)))   as user_engagement_duration
      from raw.ga_cohort_activity
     group by property_id,
              cohort_month,
              activity_month,
              first_user_default_channel_group,
              first_user_source,
              first_user_medium,
              first_user_campaign_name
),

facts as (
    select *
      from acquisition
     union all by name
    select *
      from activity
)

select *
  from facts
unpivot include nulls (
    dimension_value for dimension in (
        first_user_default_channel_group as 'channel',
        first_user_source                as 'source',
        first_user_medium                as 'medium',
        first_user_campaign_name         as 'campaign'
    )
);
