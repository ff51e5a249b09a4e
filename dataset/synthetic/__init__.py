"""Embedded synthetic binaural dataset in the upstream Spatial-AST on-disk formats.

`sources` makes labelled 10 s sound-event clips (the AudioSet side), `head` is an
analytic spherical-head binaural model, `rooms` renders shoebox binaural and mono
room impulse responses (the mp3d_reverb side), with second-order ambisonic ones from
the same image sources through `ambisonics`, and `generate` is the command line
that writes everything to disk.
"""
