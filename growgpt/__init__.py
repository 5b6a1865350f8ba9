"""growgpt: grow a GPT language model on a corpus that grows in stages.

Data flows one way: text -> token shards (`prepare`) -> training (`train`) -> checkpoint ->
sampling (`sample`). Each step lives in its own module; `cli` is a thin layer on top.
"""

__version__ = "0.1.0"
