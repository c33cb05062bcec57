"""Candidate generators: codes that bring a modified copy's stored picture into the shortlist.

The global hashes (pHash, dHash, PDQ of the whole picture) lose copies whose content moved
or is contained in a larger picture (scroll, banner, full-page capture, a page on a sandbox
desktop) before the verifier sees them. The modules here add *region* codes: several codes
per stored picture and several probes per query, looked up in the same Hamming index.
"""
