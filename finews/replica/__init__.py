"""A loopback replica of the mirror and the news-share host, built from post
files, so tests, demos and benchmarks never need the real hosts."""
