"""Extract all enabled features of a picture, and compare two feature sets into a Verdict.

CONTRACT (implemented by the algorithms work, used by core/store/service):

    matcher = Matcher(settings)
    matcher.algorithms                      # list of enabled Algorithm instances
    matcher.extract(picture) -> dict[str, bytes]        # every enabled algorithm, for storing
    matcher.query(picture) -> Query                      # query-side features (orientations, lazy costly ones)
    matcher.compare(query, stored: Mapping[str, bytes]) -> Verdict
    matcher.prefilter_codes(features: Mapping[str, bytes]) -> dict[str, bytes]  # packed-bit codes for the index
"""
