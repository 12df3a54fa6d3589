"""``finews serve``: the site, Atom feeds and a JSON API read from MongoDB."""
