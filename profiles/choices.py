"""The documented value lists of a profile: languages (ISO 639-1) and regions."""

# ISO 639-1: every two-letter language code.
LANGUAGE_CODES = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he
    hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko
    kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd
    ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
    sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty
    ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()  # noqa: SIM905 - a word list reads better than 183 quoted strings
)

# Regions a profile may name; matching can prefer or require the same region.
REGIONS = {
    "africa": "Africa",
    "asia": "Asia",
    "europe": "Europe",
    "latin-america": "Latin America and the Caribbean",
    "middle-east": "Middle East",
    "north-america": "North America",
    "oceania": "Oceania",
}
REGION_CHOICES = sorted(REGIONS.items())
