"""`vaegen eval` and `vaegen plot`: the report, the fluency judge and the pictures. Imports core, songci, train
and generate."""
