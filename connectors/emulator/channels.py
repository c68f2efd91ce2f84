"""GA4's default channel group, as one function both the generator and the export replay use."""

from __future__ import annotations

import re

SEARCH_SITES = frozenset(
    {"google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "ask"}
)
SOCIAL_SITES = frozenset(
    {
        "facebook",
        "instagram",
        "linkedin",
        "lnkd.in",
        "twitter",
        "t.co",
        "x.com",
        "pinterest",
        "reddit",
        "tiktok",
        "snapchat",
        "threads.net",
    }
)
VIDEO_SITES = frozenset({"youtube", "youtu.be", "vimeo", "twitch", "dailymotion"})
SHOPPING_SITES = frozenset({"shopping.google.com", "amazon", "ebay", "etsy", "walmart"})

_PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
_VIDEO_MEDIUM = re.compile(r"^(.*video.*)$")
_DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_EMAIL = frozenset({"email", "e-mail", "e_mail", "e mail"})


def _is_site(source: str, sites: frozenset[str]) -> bool:
    """Whether ``source`` names one of ``sites``, as a bare name or as a host name.

    A dotted entry (``t.co``) matches that host and its subdomains; a bare entry (``google``)
    matches any host with that label, so ``www.google.co.uk`` is Google but
    ``shop.googlemerchandisestore.com`` is not.
    """
    if source in sites:
        return True
    labels = source.split(".")
    return any(
        (site in labels) if "." not in site else source.endswith("." + site) for site in sites
    )


def default_channel_group(source: str, medium: str, campaign: str) -> str:
    """The first-matching channel of GA4's default channel group rules, ignoring case.

    GA's own site lists are internal to Google; this uses short lists of the common ones:
    search: google, bing, yahoo, duckduckgo, baidu, yandex, ecosia, naver, ask;
    social: facebook, instagram, linkedin, lnkd.in, twitter, t.co, x.com, pinterest, reddit,
    tiktok, snapchat, threads.net; video: youtube, youtu.be, vimeo, twitch, dailymotion;
    shopping: shopping.google.com, amazon, ebay, etsy, walmart.
    """
    source, medium, campaign = source.lower(), medium.lower(), campaign.lower()
    paid = bool(_PAID_MEDIUM.match(medium))
    shopping = _is_site(source, SHOPPING_SITES) or bool(_SHOPPING_CAMPAIGN.match(campaign))
    search = _is_site(source, SEARCH_SITES)
    social = _is_site(source, SOCIAL_SITES)
    video = _is_site(source, VIDEO_SITES)
    rules = (
        ("Direct", source == "(direct)" and medium in ("(none)", "(not set)")),
        ("Cross-network", "cross-network" in campaign),
        ("Paid Shopping", shopping and paid),
        ("Paid Search", search and paid),
        ("Paid Social", social and paid),
        ("Paid Video", video and paid),
        ("Display", medium in _DISPLAY_MEDIUMS),
        ("Paid Other", paid),
        ("Organic Shopping", shopping),
        ("Organic Social", social or medium in _SOCIAL_MEDIUMS),
        ("Organic Video", video or bool(_VIDEO_MEDIUM.match(medium))),
        ("Organic Search", search or medium == "organic"),
        ("Referral", medium in ("referral", "app", "link")),
        ("Email", source in _EMAIL or medium in _EMAIL),
        ("Affiliates", medium == "affiliate"),
        ("Audio", medium == "audio"),
        ("SMS", "sms" in (source, medium)),
        (
            "Mobile Push Notifications",
            medium.endswith("push") or "mobile" in medium or "notification" in medium,
        ),
    )
    return next((channel for channel, matched in rules if matched), "Unassigned")
