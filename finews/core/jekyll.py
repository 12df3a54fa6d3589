"""Stored posts as the mirror's own Jekyll post files.

A post whose article is raw HTML (media news) comes back byte for byte from
its stored source (``raw_articles``); markdown parts of rolling news (the
``> digest`` line) come back as the HTML they were rendered to. The replica's
synthesized posts are written with the same front matter and footer.
"""

from __future__ import annotations

from finews.core.dates import SITE_TZ
from finews.core.infocode import site_code
from finews.core.slugs import ROLLING_NEWS_SLUG, TAG_SUFFIX

MIRROR = "//finews.withounder.com"


def post_path(post: dict) -> str:
    local = post["published_at"].astimezone(SITE_TZ)
    return f"_posts/{local:%Y-%m-%d}-{site_code(post['info_code'], post.get('kind'))}.md"


def post_file(post: dict, raw_article: str | None) -> str:
    local = post["published_at"].astimezone(SITE_TZ)
    tags = post.get("tags") or [post.get("media", "") + TAG_SUFFIX]
    article = raw_article if raw_article is not None else post["body_html"]
    return (front_matter(post["title"], f"{local:%Y-%m-%d %H:%M:%S} +0800", post["category"], tags)
            + f"{article}\n\n" + footer(post["source_url"], tags[0], post["category"]))


def front_matter(title: str, date: str, category: str, tags: list[str]) -> str:
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    return (f'---\nlayout: post\ntitle: "{quoted}"\ndate: {date}\ncategories: {category}\n'
            f"tags: {' '.join(tags)}\n---\n")


def footer(source_url: str, tag: str, category: str) -> str:
    """The article link, then the links back to the listing and the home page."""
    back = f"{MIRROR}/{ROLLING_NEWS_SLUG}/" if category == ROLLING_NEWS_SLUG else f"{MIRROR}/category/{category}.html"
    return f"<{source_url}>\n\n[返回{tag}]({back})｜[返回首页]({MIRROR}/)"
