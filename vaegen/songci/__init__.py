"""What a Song ci form means, for training, decoding and measuring: forms, form ids, held forms, rhymes, tunes,
the clause grammar and the ci metrics. Imports only `core`."""
