"""growgpt: grow a GPT language model on a corpus that grows in stages.

Data flows one way, one module per step:

    dump parts (`wiki.dumps`: list, fetch, verify)
      -> pages and clean text (`wiki.extract`, `wiki.wikitext`) -> documents in Parquet
      -> token shards (`prepare`, `tokenizer`, `shards`)
      -> training (`train`, `model`, `data`) -> checkpoints (`checkpoint`) and metrics (`metrics`)
      -> evaluation on every part's val set (`evaluate`) -> report (`report`), samples (`sample`)

`grow` runs that flow for a stage plan (`plan`): each stage resumes the last on more parts with a
replay mix, in a workspace folder (`workspace`) that any step can be re-run against; `estimate`
sizes a plan before it runs, and `export` hands a model to Hugging Face transformers. `wiki/`
holds everything that knows MediaWiki (and no torch); `cli` is a thin layer on top of it all.
"""

__version__ = "0.1.0"
