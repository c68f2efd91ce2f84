"""GA4's default channel rules, case by case, in their order of precedence."""

from __future__ import annotations

import pytest

from connectors.emulator.channels import default_channel_group

CASES = [
    # examples channel-groups.md takes from the real export sample
    ("google", "organic", "(organic)", "Organic Search"),
    ("(direct)", "(none)", "(direct)", "Direct"),
    ("google", "cpc", "<Other>", "Paid Search"),
    ("shop.googlemerchandisestore.com", "referral", "(referral)", "Referral"),
    ("<Other>", "<Other>", "<Other>", "Unassigned"),
    ("(data deleted)", "(data deleted)", "(data deleted)", "Unassigned"),
    # Direct needs both the source and an empty medium
    ("(direct)", "(not set)", "(not set)", "Direct"),
    ("(direct)", "email", "(not set)", "Email"),
    # a cross-network campaign wins over everything after Direct
    ("google", "cpc", "PMax Cross-Network", "Cross-network"),
    # shopping by site or by campaign name, paid or not
    ("google", "cpc", "shopping_feed", "Paid Shopping"),
    ("google", "cpc", "summer-shop", "Paid Shopping"),
    ("google", "cpc", "workshop", "Paid Search"),  # "workshop": 'k' before 'shop'
    ("amazon.com", "referral", "(referral)", "Organic Shopping"),
    # paid by site kind, with host names and case ignored
    ("www.Bing.com", "PPC", "x", "Paid Search"),
    ("m.facebook.com", "paid_social", "x", "Paid Social"),
    ("youtube", "cpv", "x", "Paid Video"),
    ("dv360", "cpm", "x", "Display"),
    ("google", "cpm", "x", "Paid Search"),  # cpm is a paid medium, search comes first
    ("criteo", "retargeting", "x", "Paid Other"),
    # organic by site kind or medium
    ("t.co", "referral", "(referral)", "Organic Social"),
    ("newsletter", "social-network", "x", "Organic Social"),
    ("vimeo.com", "referral", "x", "Organic Video"),
    ("blog", "video_embed", "x", "Organic Video"),
    ("some-engine", "organic", "x", "Organic Search"),
    ("partner.example", "link", "x", "Referral"),
    ("mailchimp", "e-mail", "x", "Email"),
    ("awin", "affiliate", "x", "Affiliates"),
    ("spotify", "audio", "x", "Audio"),
    ("sms", "text", "x", "SMS"),
    ("app", "web-push", "x", "Mobile Push Notifications"),
    ("(not set)", "(not set)", "(not set)", "Unassigned"),
]


@pytest.mark.parametrize(("source", "medium", "campaign", "channel"), CASES)
def test_default_channel_group(source: str, medium: str, campaign: str, channel: str) -> None:
    assert default_channel_group(source, medium, campaign) == channel
