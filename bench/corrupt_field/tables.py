"""Word lists of how US names and addresses get written in other forms.

Written for this model from general knowledge of USPS and GPO conventions (USPS
Publication 28 for the short forms, the GPO Style Manual for the traditional state
abbreviations); shares nothing with lastknown's own tables.
"""

from __future__ import annotations

#: USPS code -> (full name, traditional GPO abbreviation; the full name where GPO keeps it).
STATES: dict[str, tuple[str, str]] = {
    "AL": ("Alabama", "Ala."), "AK": ("Alaska", "Alaska"), "AZ": ("Arizona", "Ariz."),
    "AR": ("Arkansas", "Ark."), "CA": ("California", "Calif."), "CO": ("Colorado", "Colo."),
    "CT": ("Connecticut", "Conn."), "DE": ("Delaware", "Del."),
    "DC": ("District of Columbia", "D.C."), "FL": ("Florida", "Fla."),
    "GA": ("Georgia", "Ga."), "HI": ("Hawaii", "Hawaii"), "ID": ("Idaho", "Idaho"),
    "IL": ("Illinois", "Ill."), "IN": ("Indiana", "Ind."), "IA": ("Iowa", "Iowa"),
    "KS": ("Kansas", "Kans."), "KY": ("Kentucky", "Ky."), "LA": ("Louisiana", "La."),
    "ME": ("Maine", "Maine"), "MD": ("Maryland", "Md."), "MA": ("Massachusetts", "Mass."),
    "MI": ("Michigan", "Mich."), "MN": ("Minnesota", "Minn."),
    "MS": ("Mississippi", "Miss."), "MO": ("Missouri", "Mo."), "MT": ("Montana", "Mont."),
    "NE": ("Nebraska", "Nebr."), "NV": ("Nevada", "Nev."),
    "NH": ("New Hampshire", "N.H."), "NJ": ("New Jersey", "N.J."),
    "NM": ("New Mexico", "N. Mex."), "NY": ("New York", "N.Y."),
    "NC": ("North Carolina", "N.C."), "ND": ("North Dakota", "N. Dak."),
    "OH": ("Ohio", "Ohio"), "OK": ("Oklahoma", "Okla."), "OR": ("Oregon", "Oreg."),
    "PA": ("Pennsylvania", "Pa."), "PR": ("Puerto Rico", "P.R."),
    "RI": ("Rhode Island", "R.I."), "SC": ("South Carolina", "S.C."),
    "SD": ("South Dakota", "S. Dak."), "TN": ("Tennessee", "Tenn."),
    "TX": ("Texas", "Tex."), "UT": ("Utah", "Utah"), "VT": ("Vermont", "Vt."),
    "VA": ("Virginia", "Va."), "WA": ("Washington", "Wash."),
    "WV": ("West Virginia", "W. Va."), "WI": ("Wisconsin", "Wis."),
    "WY": ("Wyoming", "Wyo."),
}

DIRECTIONS: dict[str, str] = {
    "N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST",
    "NE": "NORTHEAST", "NW": "NORTHWEST", "SE": "SOUTHEAST", "SW": "SOUTHWEST",
}

ORDINALS: dict[str, str] = {
    "1ST": "FIRST", "2ND": "SECOND", "3RD": "THIRD", "4TH": "FOURTH", "5TH": "FIFTH",
    "6TH": "SIXTH", "7TH": "SEVENTH", "8TH": "EIGHTH", "9TH": "NINTH", "10TH": "TENTH",
    "11TH": "ELEVENTH", "12TH": "TWELFTH", "13TH": "THIRTEENTH", "14TH": "FOURTEENTH",
    "15TH": "FIFTEENTH", "16TH": "SIXTEENTH", "17TH": "SEVENTEENTH",
    "18TH": "EIGHTEENTH", "19TH": "NINETEENTH", "20TH": "TWENTIETH",
}

#: A street type as a keyer may write it: every form is one spelling of the same type.
STREET_TYPES: tuple[tuple[str, ...], ...] = (
    ("ST", "STREET", "STR", "ST."), ("AVE", "AVENUE", "AV", "AVE."),
    ("RD", "ROAD", "RD."), ("DR", "DRIVE", "DR."), ("LN", "LANE"),
    ("BLVD", "BOULEVARD", "BLVD."), ("CT", "COURT", "CRT"), ("PL", "PLACE"),
    ("CIR", "CIRCLE", "CIRC"), ("TER", "TERRACE", "TERR"), ("PKWY", "PARKWAY", "PKY"),
    ("HWY", "HIGHWAY"), ("TRL", "TRAIL"), ("WAY", "WY"), ("SQ", "SQUARE"),
    ("CV", "COVE"), ("PT", "POINT"), ("LOOP", "LP"), ("ALY", "ALLEY"),
    ("XING", "CROSSING"), ("EXPY", "EXPRESSWAY"), ("CRES", "CRESCENT"),
)

#: Words inside place and street names with a short form.
PLACE_WORDS: dict[str, str] = {"SAINT": "ST", "MOUNT": "MT", "FORT": "FT"}

UNIT_WORDS: tuple[str, ...] = ("APT", "APT.", "UNIT", "#", "STE", "NO.", "APARTMENT")

SUFFIXES: tuple[str, ...] = ("JR", "JR.", "SR", "II", "III", "IV")

#: Fixed-width export layouts: (given name, surname, street, city) column widths.
WIDTHS: tuple[tuple[int, int, int, int], ...] = (
    (10, 12, 20, 13), (12, 15, 25, 13), (8, 10, 22, 15), (15, 15, 30, 13),
)
