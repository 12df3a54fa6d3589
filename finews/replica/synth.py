"""Synthesize many distinct posts from the corpus for scale tests.

Each post mixes a few real paragraphs (their eastmoney markup included) from
different corpus articles, so cleaning does real work; codes are unique and
dates spread over months. The corpus has only ~180 paragraphs, so posts
sharing one would become near duplicates more often the more are made (real
news does not): every post replaces a seeded quarter of its Chinese
characters (text only, never markup) with others from the corpus, which
keeps unrelated posts' 3-gram similarity low at any scale.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from finews.core.feeds import SHARE_LINK
from finews.core.jekyll import write_post
from finews.core.slugs import TAG_SUFFIX, media_from_tag, media_slug
from finews.replica.postfile import PostFile

_PARAGRAPH = re.compile(r"<p[ >].*?</p>", re.S)
_TEXT = re.compile(r">([^<]+)<")  # text between tags: the only part rewritten
_HAN = re.compile(r"[\u4e00-\u9fff]")
REWRITTEN = 0.25  # share of a post's Chinese characters replaced
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
        self.characters = sorted({c for p in self.paragraphs for c in _HAN.findall(p)})
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
        body_paragraphs = [self._rewritten(p, rng) for p in
                           rng.sample(self.paragraphs, k=min(len(self.paragraphs), rng.randint(3, 6)))]
        link = SHARE_LINK.format(code)
        article = "".join(body_paragraphs) + f'<p class="em_media">（文章来源：{media}）</p>'
        title = f"{rng.choice(self.titles)}（{number}）"
        date = f"{moment:%Y-%m-%d %H:%M:%S} +0800"
        raw = write_post(title, date, slug, [tag], article, link)
        return PostFile(name=f"{moment:%Y-%m-%d}-{code}.md", title=title, date=date, category=slug,
                        tags=[tag], body=raw.split("\n---\n", 1)[1], link=link, raw=raw)

    def _rewritten(self, paragraph: str, rng: random.Random) -> str:
        """The paragraph with a seeded share of its Chinese characters
        replaced, its tags and attributes untouched."""
        def han(match: re.Match) -> str:
            return rng.choice(self.characters) if rng.random() < REWRITTEN else match.group()

        return _TEXT.sub(lambda text: ">" + _HAN.sub(han, text.group(1)) + "<", paragraph)

    def batch(self, start: int, count: int) -> list[PostFile]:
        return [self.make(number) for number in range(start, start + count)]
