-- Both raw reports in one long shape, one row per first-user dimension: the only place that
-- maps the GA first-user columns to the dimension names the marts use. include nulls keeps a
-- row whose dimension value is missing, so its users and revenue still count.
create or replace table staging.first_user_facts as
with facts as (
    select 'acquisition'                                           as report,
           property_id,
           cast(date_trunc('month', first_session_date) as date)   as cohort_month,
           cast(null as date)                                      as activity_month,
           first_user_default_channel_group,
           first_user_source,
           first_user_medium,
           first_user_campaign_name,
           new_users
      from raw.ga_acquisition
     union all by name
    select 'cohort_activity'                                       as report,
           property_id,
           cast(date_trunc('month', first_session_date) as date)   as cohort_month,
           partition_month                                         as activity_month,
           first_user_default_channel_group,
           first_user_source,
           first_user_medium,
           first_user_campaign_name,
           total_revenue,
           purchase_revenue,
           transactions,
           ecommerce_purchases,
           sessions,
           screen_page_views,
           user_engagement_duration
      from raw.ga_cohort_activity
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
