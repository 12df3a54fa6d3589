"""Synthesize many distinct posts from the corpus for scale tests.

Each post mixes a few real paragraphs (their eastmoney markup included) from
different corpus articles, so cleaning does real work and posts are not near
duplicates of each other; codes are unique and dates spread over months.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from finews.core.jekyll import footer, front_matter
from finews.core.postfile import PostFile
from finews.core.slugs import TAG_SUFFIX, media_from_tag, media_slug

_PARAGRAPH = re.compile(r"<p[ >].*?</p>", re.S)
START = datetime(2022, 1, 1, 8, 0, 0)
SPAN = timedelta(days=300)
SYNTHETIC_MEDIA = 30


class PostSynthesizer:
    """Post number ``i`` is always the same post (seeded), so runs repeat."""

    def __init__(self, corpus: list[PostFile], total_hint: int = 10_000, seed: int = 7):
        self.seed = seed
        self.step = SPAN / max(total_hint, 1)
        self.paragraphs = sorted({p for post in corpus for p in _PARAGRAPH.findall(post.body)
                                  if len(p) > 40 and "EM_StockImg" not in p})
        self.titles = [post.title for post in corpus if post.title]
        media = sorted({media_from_tag(p.tags[0]) for p in corpus if p.tags and p.tags[0].endswith(TAG_SUFFIX)}
                       - {"东财滚动"})
        self.media = media + [f"财经媒体{k}" for k in range(SYNTHETIC_MEDIA)]
        if not self.paragraphs or not self.titles:
            raise ValueError("the corpus has no article paragraphs to synthesize from")

    def make(self, number: int) -> PostFile:
        rng = random.Random(self.seed * 1_000_003 + number)
        moment = START + self.step * number
        code = f"NW{moment:%Y%m%d}{number:010d}"
        media = self.media[number % len(self.media)]
        slug = media_slug(media)
        tag = media + TAG_SUFFIX
        body_paragraphs = rng.sample(self.paragraphs, k=min(len(self.paragraphs), rng.randint(3, 6)))
        link = f"http://finews.zning.xyz/html_News/NewsShare.html?infoCode={code}"
        body = ("".join(body_paragraphs) + f'<p class="em_media">（文章来源：{media}）</p>\n\n'
                + footer(link, tag, slug))
        title = f"{rng.choice(self.titles)}（{number}）"
        date = f"{moment:%Y-%m-%d %H:%M:%S} +0800"
        return PostFile(name=f"{moment:%Y-%m-%d}-{code}.md", title=title, date=date, category=slug,
                        tags=[tag], body=body, link=link, raw=front_matter(title, date, slug, [tag]) + body)

    def batch(self, start: int, count: int) -> list[PostFile]:
        return [self.make(number) for number in range(start, start + count)]
