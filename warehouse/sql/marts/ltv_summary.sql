-- One row per property, first-user dimension and value: acquired users and LTV at 1, 3, 6 and
-- 12 months since acquisition, each weighted over the cohorts that have reached that age
-- (sum of their cumulative revenue / sum of their acquired users), so young cohorts neither
-- drag a figure down nor count in its denominator. cohorts_<n>m says how many cohorts stand
-- behind ltv_<n>m. Cohorts without acquired users (revenue from a value GA reported no new
-- users for) are left out of every figure; their revenue stays in marts.ltv_monthly.
create or replace table marts.ltv_summary as
with cohort_ages as (
    select property_id,
           dimension,
           dimension_value,
           cohort_month,
           months_since_acquisition        as age,
           acquired_users,
           -- exact sums across cohorts, whatever order the rows come in
           cast(cumulative_revenue as decimal(38, 6)) as cumulative_revenue,
           currency_code
      from marts.ltv_monthly
     where acquired_users > 0
       and months_since_acquisition in (0, 1, 3, 6, 12)
)

select property_id,
       dimension,
       dimension_value,
       cast(count(*) filter (where age = 0) as integer)               as cohorts,
       min(cohort_month)                                              as first_cohort_month,
       max(cohort_month)                                              as last_cohort_month,
       cast(coalesce(sum(acquired_users) filter (where age = 0), 0) as bigint)
                                                                      as acquired_users,
       cast(sum(cumulative_revenue) filter (where age = 1) as double)
           / sum(acquired_users) filter (where age = 1)               as ltv_1m,
       cast(count(*) filter (where age = 1) as integer)               as cohorts_1m,
       cast(sum(cumulative_revenue) filter (where age = 3) as double)
           / sum(acquired_users) filter (where age = 3)               as ltv_3m,
       cast(count(*) filter (where age = 3) as integer)               as cohorts_3m,
       cast(sum(cumulative_revenue) filter (where age = 6) as double)
           / sum(acquired_users) filter (where age = 6)               as ltv_6m,
       cast(count(*) filter (where age = 6) as integer)               as cohorts_6m,
       cast(sum(cumulative_revenue) filter (where age = 12) as double)
           / sum(acquired_users) filter (where age = 12)              as ltv_12m,
       cast(count(*) filter (where age = 12) as integer)              as cohorts_12m,
       string_agg(distinct currency_code, ', ' order by currency_code)
                                                                      as currency_code
  from cohort_ages
 group by property_id, dimension, dimension_value
 order by property_id, dimension, acquired_users desc, dimension_value;
