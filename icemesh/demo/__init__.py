"""`make demo`: a vaccine maker's data mesh, end to end, on the embedded catalog.

data.py generates the domains' raw data; projects.py runs the dbt projects as their principals; engines.py
queries one product from several engines; copies.py measures that reads copied nothing; story.py tells it
in order and ends with the summary; `python -m icemesh.demo` runs it.
"""
