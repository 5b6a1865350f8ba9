"""Everything that knows MediaWiki, and no torch: list, fetch and verify a wiki's dump parts
(`dumps`, over the bounded mirror client `mirror`), decompress them in parallel (`bz2blocks`), cut
them into tasks of whole pages for worker processes (`tasks`), parse their XML pages (`pages`),
turn wikitext into plain text (`wikitext`, `templates`), tell disambiguation pages (`disambiguation`)
and write one Parquet file of documents per part (`partwriter`, run by `extract`)."""
