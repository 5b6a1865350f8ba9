"""Everything that knows MediaWiki, and no torch: list and fetch a wiki's dump parts (`dumps`),
decompress them in parallel (`bz2blocks`), parse their XML pages (`pages`), turn wikitext into
plain text (`wikitext`, `templates`) and write one Parquet file of documents per part (`extract`)."""
