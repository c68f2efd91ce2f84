-- One dimension of marts.ltv_monthly under its own column name. {table} and {value_column} are
-- identifiers the code fills in from its fixed list of dimensions, validated and quoted.
create or replace table marts.{table} as
select property_id,
       cohort_month,
       dimension_value                 as {value_column},
       months_since_acquisition,
       activity_month,
       acquired_users,
       revenue,
       cumulative_revenue,
       ltv,
       currency_code,
       transactions_per_user,
       sessions_per_user,
       page_views_per_user,
       engagement_seconds_per_user
  from marts.ltv_monthly
 where dimension = $dimension
 order by property_id, {value_column}, cohort_month, months_since_acquisition;
