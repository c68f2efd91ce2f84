-- Users acquired per cohort month and dimension value. newUsers counts a user once, on the day
-- of their first session, so the days of a month add up to the cohort size.
create or replace table staging.cohort_sizes as
select property_id,
       cohort_month,
       dimension,
       dimension_value,
       cast(sum(new_users) as bigint)    as acquired_users
  from staging.first_user_facts
 where report = 'acquisition'
 group by property_id, cohort_month, dimension, dimension_value;
