-- What each cohort did in each activity month. Only additive metrics are summed over days.
create or replace table staging.cohort_activity as
select property_id,
       cohort_month,
       activity_month,
       dimension,
       dimension_value,
       coalesce(sum(total_revenue), 0)                           as revenue,
       coalesce(sum(purchase_revenue), 0)                        as purchase_revenue,
       cast(coalesce(sum(transactions), 0) as bigint)            as transactions,
       cast(coalesce(sum(ecommerce_purchases), 0) as bigint)     as ecommerce_purchases,
       cast(coalesce(sum(sessions), 0) as bigint)                as sessions,
       cast(coalesce(sum(screen_page_views), 0) as bigint)       as page_views,
       coalesce(sum(user_engagement_duration), 0)                as engagement_seconds
  from staging.first_user_facts
 where report = 'cohort_activity'
 group by property_id, cohort_month, activity_month, dimension, dimension_value;
