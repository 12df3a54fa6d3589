"""The spiders: ``category`` (mirror listings) and ``newsshare`` (share pages)."""
