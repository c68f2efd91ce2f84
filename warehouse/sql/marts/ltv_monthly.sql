-- Lifetime value by cohort month, first-user dimension value and month of age, for all four
-- dimensions stacked (Looker Studio reads one table per data source).
--
-- A cohort appears only if its acquisition partition was loaded, otherwise its size is unknown.
-- Its ages run from 0 through the property's last loaded cohort_activity month and stop before
-- the first activity month that was not loaded: cumulative values after a gap would be too low.
create or replace table marts.ltv_monthly as
with loaded_acquisition as (
    select distinct
           property_id,
           partition_month                 as cohort_month
      from raw.ga_loads
     where report = 'acquisition'
),

loaded_activity as (
    select property_id,
           partition_month                 as activity_month,
           currency_code
      from raw.ga_loads
     where report = 'cohort_activity'
),

last_activity as (
    select property_id,
           max(activity_month)             as last_activity_month
      from loaded_activity
     group by property_id
),

age_grid as (
    select a.property_id,
           a.cohort_month,
           cast(unnest(generate_series(a.cohort_month, l.last_activity_month, interval 1 month))
                as date)                   as activity_month
      from loaded_acquisition as a
      join last_activity      as l
        on l.property_id = a.property_id
),

ages as (
    select g.property_id,
           g.cohort_month,
           g.activity_month,
           la.currency_code,
           bool_and(la.activity_month is not null) over (
               partition by g.property_id, g.cohort_month
               order by g.activity_month
           )                               as no_gap_so_far
      from age_grid             as g
      left join loaded_activity as la
        on la.property_id    = g.property_id
       and la.activity_month = g.activity_month
),

members as (
    select property_id, cohort_month, dimension, dimension_value
      from staging.cohort_sizes
     union
    select property_id, cohort_month, dimension, dimension_value
      from staging.cohort_activity
),

monthly as (
    select m.property_id,
           m.cohort_month,
           m.dimension,
           m.dimension_value,
           a.activity_month,
           a.currency_code,
           coalesce(s.acquired_users, 0)   as acquired_users,
           coalesce(x.revenue, 0)          as revenue,
           coalesce(x.transactions, 0)     as transactions,
           coalesce(x.sessions, 0)         as sessions,
           coalesce(x.page_views, 0)       as page_views,
           coalesce(x.engagement_seconds, 0) as engagement_seconds
      from members as m
      join ages    as a
        on a.property_id  = m.property_id
       and a.cohort_month = m.cohort_month
       and a.no_gap_so_far
      left join staging.cohort_sizes as s
        on s.property_id      = m.property_id
       and s.cohort_month     = m.cohort_month
       and s.dimension        = m.dimension
       and s.dimension_value is not distinct from m.dimension_value
      left join staging.cohort_activity as x
        on x.property_id      = m.property_id
       and x.cohort_month     = m.cohort_month
       and x.activity_month   = a.activity_month
       and x.dimension        = m.dimension
       and x.dimension_value is not distinct from m.dimension_value
),

cumulative as (
    select *,
           sum(revenue) over cohort_age            as cumulative_revenue,
           sum(transactions) over cohort_age       as cumulative_transactions,
           sum(sessions) over cohort_age           as cumulative_sessions,
           sum(page_views) over cohort_age         as cumulative_page_views,
           sum(engagement_seconds) over cohort_age as cumulative_engagement_seconds
      from monthly
    window cohort_age as (
               partition by property_id, cohort_month, dimension, dimension_value
               order by activity_month
           )
)

select property_id,
       cohort_month,
       dimension,
       dimension_value,
       cast(datediff('month', cohort_month, activity_month) as integer)
                                                          as months_since_acquisition,
       activity_month,
       cast(acquired_users as bigint)                     as acquired_users,
       cast(revenue as double)                            as revenue,
       cast(cumulative_revenue as double)                 as cumulative_revenue,
       cast(cumulative_revenue as double) / nullif(acquired_users, 0)
                                                          as ltv,
       currency_code,
       cumulative_transactions / nullif(acquired_users, 0)
                                                          as transactions_per_user,
       cumulative_sessions / nullif(acquired_users, 0)    as sessions_per_user,
       cumulative_page_views / nullif(acquired_users, 0)  as page_views_per_user,
       cast(cumulative_engagement_seconds as double) / nullif(acquired_users, 0)
                                                          as engagement_seconds_per_user
  from cumulative
 order by property_id, dimension, dimension_value, cohort_month, months_since_acquisition;
