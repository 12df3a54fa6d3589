"""Stored posts as the mirror's own Jekyll post files.

A post whose article is raw HTML (media news) comes back byte for byte from
its stored source (``raw_articles``); markdown parts of rolling news (the
``> digest`` line) come back as the HTML they were rendered to.
"""

from __future__ import annotations

from finews.dates import SITE_TZ
from finews.slugs import ROLLING_NEWS_SLUG, TAG_SUFFIX

MIRROR = "//finews.withounder.com"


def post_path(post: dict) -> str:
    local = post["published_at"].astimezone(SITE_TZ)
    stem = post["info_code"] if post.get("kind") != "rolling" else post["info_code"][2:]
    return f"_posts/{local:%Y-%m-%d}-{stem}.md"


def post_file(post: dict, raw_article: str | None) -> str:
    local = post["published_at"].astimezone(SITE_TZ)
    tags = post.get("tags") or [post.get("media", "") + TAG_SUFFIX]
    category = post["category"]
    back = f"{MIRROR}/{ROLLING_NEWS_SLUG}/" if category == ROLLING_NEWS_SLUG else f"{MIRROR}/category/{category}.html"
    title = post["title"].replace("\\", "\\\\").replace('"', '\\"')
    return (
        "---\nlayout: post\n"
        f'title: "{title}"\n'
        f"date: {local:%Y-%m-%d %H:%M:%S} +0800\n"
        f"categories: {category}\n"
        f"tags: {' '.join(tags)}\n"
        "---\n"
        f"{raw_article if raw_article is not None else post['body_html']}\n\n"
        f"<{post['source_url']}>\n\n"
        f"[返回{tags[0]}]({back})｜[返回首页]({MIRROR}/)"
    )
