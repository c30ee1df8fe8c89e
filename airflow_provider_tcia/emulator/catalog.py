"""The built-in datasets: real TCIA identifiers (see ``tcia-api.md`` §4), synthetic pixels.

* ``default`` — production-like: TCGA-GBM, TCGA-BRCA, LIDC-IDRI, 4D-Lung, VICTRE, CBIS-DDSM and TCGA-KIRC,
  released between 2011 and 2020 so that "new since DATE" queries select something, with the shared lists
  ``sharedListApiUnitTest`` and ``nbia-49121659384603347``.
* ``test`` — the seed's test server ("a small set of known data"): two TCGA-GBM patients.
* ``scaled`` — ``default`` plus ``SCALE-100K`` (100,000 series generated on demand).

Identifiers the reference does not give are derived deterministically (same every run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from airflow_provider_tcia.emulator.dataset import (
    CC_BY_3,
    CC_BY_3_URI,
    CC_BY_4,
    CC_BY_4_URI,
    Catalog,
    Collection,
    Patient,
    Series,
    Study,
    hashed_uid,
)

D = dt.date
TCIA = "1.3.6.1.4.1.14519.5.2.1."


class _Builder:
    """A compact way to write a catalog: patient -> study -> series, with derived identifiers."""

    def __init__(self) -> None:
        self.catalog = Catalog()

    def collection(self, name: str, **kw: str) -> None:
        self.catalog.collections.append(Collection(name, **kw))

    def patient(self, collection: str, patient_id: str, name: str | None = None, sex: str | None = None, **kw):
        p = Patient(collection, patient_id, patient_id if name is None else name, sex, **kw)
        self.catalog.patients.append(p)
        return p

    def study(
        self,
        patient: Patient,
        root: str,
        uid: str | None,
        date: dt.date,
        description: str | None,
        age: str | None = None,
    ) -> Study:
        uid = uid and (uid if uid.startswith("1.") else root + uid)
        uid = uid or hashed_uid(root, patient.collection, patient.patient_id, "study", date)
        s = Study(patient.collection, patient.patient_id, uid, date, description, age)
        self.catalog.studies.append(s)
        return s

    def series(
        self,
        study: Study,
        root: str,
        uid: str | None,
        modality: str,
        released: dt.date,
        images: int,
        number: int,
        description: str | None,
        **kw: Any,
    ) -> Series:
        uid = uid and (uid if uid.startswith("1.") else root + uid)
        uid = uid or hashed_uid(root, study.study_instance_uid, "series", number)
        kw.setdefault("series_date", study.study_date)
        rows, columns = _matrix(modality, images)
        kw.setdefault("rows", rows)
        kw.setdefault("columns", columns)
        s = Series(
            study.collection, study.patient_id, study.study_instance_uid, uid, modality, released, images,
            series_number=number, description=description, **kw,
        )  # fmt: skip
        self.catalog.series.append(s)
        return s


def _matrix(modality: str, images: int) -> tuple[int, int]:
    """(rows, columns) of a catalogue series: enough to see the anatomy, small enough for fast tests —
    radiographs and mammograms (portrait) 256 pixels high, tomographic series 128 (64 beyond 80 images)."""
    if modality in ("CR", "DX"):
        return 256, 256
    if modality == "MG":
        return 256, 208
    return (64, 64) if images > 80 else (128, 128)


# --- collections ------------------------------------------------------------------------------------------

GBM = TCIA + "7695.4001."
GBM_2 = TCIA + "4591.4001."
GBM_SERIES = GBM + "306204232344341694648035234440"


def _tcga_gbm(b: _Builder, *, small: bool = False) -> None:
    b.collection("TCGA-GBM", site="TCGA", doi="https://doi.org/10.7937/K9/TCIA.2016.RNYFUYE9")
    mr = {"body_part": "BRAIN", "manufacturer": "GE MEDICAL SYSTEMS", "model": "GENESIS_SIGNA", "software": "09"}
    p = b.patient("TCGA-GBM", "TCGA-08-0244", sex="M")
    st = b.study(p, GBM, "130563880911723253267280582465", D(1997, 3, 18), "MRI BRAIN W/WO CONTRAST", "056Y")
    b.series(
        st,
        GBM,
        "306204232344341694648035234440",
        "MR",
        D(2011, 2, 1),
        24,
        5,
        "AX T1 POST GD",
        protocol="BRAIN ROUTINE",
        known_sop_uids=(GBM + "254637948180506182312529390348",),
        **mr,
    )
    b.series(st, GBM, None, "MR", D(2011, 2, 1), 20, 3, "AX T2 FSE", protocol="BRAIN ROUTINE", **mr)
    if not small:
        b.series(st, GBM, None, "MR", D(2011, 2, 1), 20, 4, "AX FLAIR", protocol="BRAIN ROUTINE", **mr)

    siemens = {"body_part": "BRAIN", "manufacturer": "SIEMENS", "model": "Avanto", "software": "syngo MR B15"}
    p = b.patient("TCGA-GBM", "TCGA-06-6701", sex="F")
    st = b.study(p, GBM_2, "151679082681232740021018262895", D(2001, 6, 28), "MRI BRAIN", "061Y")
    b.series(st, GBM_2, None, "MR", D(2014, 9, 10), 16, 2, "t1_se_tra", protocol="t1_se_tra", **siemens)
    b.series(st, GBM_2, None, "MR", D(2014, 9, 10), 16, 6, "t2_tse_tra", protocol="t2_tse_tra", **siemens)
    st = b.study(p, GBM_2, None, D(2002, 1, 15), "MRI BRAIN FOLLOW-UP", "062Y")
    b.series(st, GBM_2, None, "MR", D(2019, 7, 22), 12, 2, "t1_se_tra POST", protocol="t1_se_tra", **siemens)
    if small:
        return

    p = b.patient("TCGA-GBM", "TCGA-02-0003", sex="M")
    st = b.study(p, GBM, None, D(1997, 6, 8), "MRI BRAIN", "050Y")
    b.series(st, GBM, None, "MR", D(2011, 2, 1), 20, 2, "AX T1", protocol="BRAIN ROUTINE", **mr)
    b.series(st, GBM, None, "MR", D(2011, 2, 1), 20, 7, "AX T1 POST", protocol="BRAIN ROUTINE", **mr)

    p = b.patient("TCGA-GBM", "TCGA-14-1825", sex="F")
    st = b.study(p, GBM, None, D(1999, 11, 2), "CT HEAD WO CONTRAST", "067Y")
    b.series(
        st,
        GBM,
        None,
        "CT",
        D(2016, 8, 22),
        12,
        2,
        "HEAD 5MM",
        body_part="BRAIN",
        manufacturer="SIEMENS",
        model="Sensation 16",
        software="syngo CT 2006A",
        protocol="HEAD ROUTINE",
    )

    p = b.patient("TCGA-GBM", "TCGA-19-5958", sex="M")
    st = b.study(p, GBM, None, D(2004, 4, 4), "MRI BRAIN", "044Y")
    b.series(st, GBM, None, "MR", D(2020, 3, 3), 16, 3, "AX T2", protocol="BRAIN ROUTINE", **mr)


BRCA = TCIA + "3344.4002."
BRCA_5382 = TCIA + "5382.4002."
BRCA_SERIES = BRCA + "142000486987125226950494153345"


def _tcga_brca(b: _Builder) -> None:
    b.collection("TCGA-BRCA", site="TCGA", doi="https://doi.org/10.7937/K9/TCIA.2016.AB2NAZRP")
    ge = {"body_part": "BREAST", "manufacturer": "GE MEDICAL SYSTEMS", "model": "SIGNA EXCITE", "software": "11",
          "protocol": "VIBRANT BREAST/"}  # fmt: skip
    p = b.patient("TCGA-BRCA", "TCGA-AR-A1AQ", sex="F")
    st = b.study(p, BRCA, "307747749278929226311301198628", D(2001, 11, 21), "*MRI - BREAST", "049Y")
    r = D(2013, 7, 15)
    for uid, number, description, images in (
        ("142000486987125226950494153345", 4, "LT SAG FSE T2", 36),
        ("176672261446738229459423756538", 8, "VIBRANT", 464),
        ("211084519843030234592826223931", 2, "ax t1", 40),
        ("240461194127099406985978695670", 7, "ASSET CAL", 64),
        ("268424555374802928499999399479", 5, "RT SAG FSE T1", 40),
        ("270335870121494755687802920012", 9, "BRAVA--1 MIN", 136),
    ):
        b.series(st, BRCA, uid, "MR", r, images, number, description, **ge)
    known = tuple(
        BRCA + n
        for n in (
            "103833384819234677052128156490", "107594813336758156477053115154", "108961012724040858986707256483",
            "113224119964450170072494597907", "114239357229984807449733158209", "114874592963584770107488944633",
        )
    )  # fmt: skip
    # The seed's getSingleImage of the fourth of these downloads as 150.dcm.
    b.series(
        st,
        BRCA,
        "298037359751562809791703106256",
        "MR",
        r,
        12,
        10,
        "BRAVA--2 MIN",
        known_sop_uids=known,
        legacy_file_base=147,
        **ge,
    )
    for number, description, images in ((1, "3 PLANE LOC", 3), (3, "RT SAG FSE T2", 20), (6, "LT SAG FSE T1", 20),
                                        (11, "BRAVA--3 MIN", 12)):  # fmt: skip
        b.series(st, BRCA, None, "MR", r, images, number, description, **ge)
    st = b.study(p, BRCA, "100294194044853718189419781050", D(2003, 5, 7), "MRI BREAST, BILATERAL", "050Y")
    for number in range(1, 13):
        b.series(st, BRCA, None, "MR", D(2014, 5, 20), 3 + number % 5, number, f"BILAT SERIES {number}", **ge)

    p = b.patient("TCGA-BRCA", "TCGA-OL-A5DA", sex="F")
    st = b.study(p, BRCA_5382, "104582989590517557856962159716", D(2004, 2, 10), "MRI BREAST BILATERAL", "054Y")
    b.series(
        st,
        BRCA_5382,
        "806935685832642465081499816867",
        "MR",
        D(2015, 3, 2),
        41,
        3,
        "Ax Vibrant MultiPhase",
        known_sop_uids=(BRCA_5382 + "257663256941568276393774062283",),
        legacy_file_base=165,
        **ge,
    )
    b.series(st, BRCA_5382, "272234209223992578700978260744", "MR", D(2015, 3, 2), 20, 4, "Sag T2 FSE", **ge)
    for pid, uid, released in (
        ("TCGA-OL-A5RU", "330793838288961518168640006613", D(2015, 3, 2)),
        ("TCGA-OL-A66O", "221816646143692380342454392165", D(2016, 1, 11)),
    ):
        p = b.patient("TCGA-BRCA", pid, sex="F")
        st = b.study(p, BRCA_5382, uid, D(2004, 8, 1), "MRI BREAST BILATERAL", "058Y")
        b.series(st, BRCA_5382, None, "MR", released, 8, 2, "Ax Vibrant", **ge)

    p = b.patient("TCGA-BRCA", "TCGA-AO-A129", sex="F")
    st = b.study(p, TCIA + "9203.4002.", "285233690698334761371173535710", D(2003, 1, 9), "MRI BREAST", "047Y")
    b.series(st, TCIA + "9203.4002.", None, "MR", D(2013, 7, 15), 10, 2, "AX T1", **ge)

    p = b.patient("TCGA-BRCA", "TCGA-AR-A24S", sex="F")
    st = b.study(p, BRCA, "249354313922816279857767035077", D(2002, 3, 3), "MRI BREAST", "061Y")
    b.series(st, BRCA, None, "MR", D(2013, 7, 15), 10, 2, "ax t1", **ge)
    st = b.study(p, BRCA, "291701067965044082231683003194", D(2003, 3, 5), "MRI BREAST", "062Y")
    b.series(st, BRCA, None, "MR", D(2018, 10, 1), 10, 2, "ax t1", **ge)

    p = b.patient("TCGA-BRCA", "TCGA-E2-A107", sex="F")
    st = b.study(p, TCIA + "3023.4002.", "187532659972726751563533268137", D(2005, 6, 6), "MRI BREAST", "052Y")
    b.series(st, TCIA + "3023.4002.", None, "MR", D(2013, 7, 15), 10, 2, "AX T1", **ge)


LIDC = TCIA + "6279.6001."
LIDC_DX = LIDC + "141365756818074696859567662357"
LIDC_CT = LIDC + "179049373636438705059720603192"


def _lidc_idri(b: _Builder) -> None:
    b.collection("LIDC-IDRI", site="LIDC", doi="https://doi.org/10.7937/K9/TCIA.2015.LO9QL9SX")
    p = b.patient("LIDC-IDRI", "LIDC-IDRI-0001", name="")
    st = b.study(p, LIDC, "175012972118199124641098335511", D(2000, 1, 1), None)
    b.series(
        st,
        LIDC,
        "141365756818074696859567662357",
        "DX",
        D(2015, 9, 1),
        2,
        3000923,
        None,
        body_part="CHEST",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Revolution XQi ADS_28.2",
        annotations_flag=True,
        known_sop_uids=(LIDC + "307896144859643716158189196068", LIDC + "257944242390114100388269195181"),
    )
    st = b.study(p, LIDC, "298806137288633453246975630178", D(2000, 1, 1), None)
    ct = {"body_part": "CHEST", "manufacturer": "GE MEDICAL SYSTEMS", "model": "LightSpeed Plus",
          "software": "LightSpeedApps2.4.2_H2.4M5"}  # fmt: skip
    b.series(
        st, LIDC, "179049373636438705059720603192", "CT", D(2011, 3, 1), 133, 3000566, None, annotations_flag=True, **ct
    )
    for k, modality in enumerate(("CT", "CT", "CT", "CR", "CR", "DX", "DX", "CT")):
        b.series(st, LIDC, None, modality, D(2011, 3, 1), 1 + k % 4, 3000600 + k, None, **ct)

    p = b.patient("LIDC-IDRI", "LIDC-IDRI-0002", name="")
    st = b.study(p, LIDC, None, D(2000, 1, 1), None)
    b.series(st, LIDC, None, "CT", D(2011, 3, 1), 40, 3000522, None, annotations_flag=True, **ct)


LUNG4D = TCIA + "6834.5010."
LUNG4D_SERIES = LUNG4D + "322628904903035357840500590726"


def _4d_lung(b: _Builder) -> None:
    b.collection("4D-Lung", site="VCU", doi="https://doi.org/10.7937/K9/TCIA.2016.ELN8YGLE")
    p = b.patient("4D-Lung", "100_HM10395", name="P100", sex="M")
    st = b.study(p, LUNG4D, "335014117706890137582032169351", D(1997, 9, 15), "p4", "000Y")
    varian = {"body_part": "LUNG", "manufacturer": "Varian Imaging Laboratories, Switzerland",
              "model": "Trilogy Cone Beam CT", "software": "LightSpeedverrel",
              "protocol": "5.1 4DCT & ITV FB + 4D + INSP/EXP", "submitted": D(2015, 7, 20)}  # fmt: skip
    b.series(
        st,
        LUNG4D,
        "322628904903035357840500590726",
        "CT",
        D(2016, 10, 19),
        50,
        500,
        "P4^P100^S100^I0, Gated, 0.0%",
        **varian,
    )
    b.series(
        st,
        LUNG4D,
        "169813524397777042080157516872",
        "CT",
        D(2016, 10, 19),
        30,
        501,
        "P4^P100^S100^I0, Gated, 10.0%",
        **varian,
    )


VICTRE = TCIA + "2135.6389."
VICTRE_SERIES = VICTRE + "861085683843003228352649673146"


def _victre(b: _Builder) -> None:
    b.collection("VICTRE", site="FDA", doi="https://doi.org/10.7937/TCIA.2019.ho23nxaw")
    mg = {"body_part": "BREAST", "manufacturer": "VICTRE", "submitted": D(2019, 2, 25)}
    p = b.patient("VICTRE", "1215936303", name="", sex="F")
    st = b.study(p, VICTRE, "101337736148606617569659173510", D(2018, 1, 6), "DBT Reconstructed Volume")
    b.series(st, VICTRE, "861085683843003228352649673146", "MG", D(2019, 3, 8), 57, 1, "DBT slices", **mg)
    p = b.patient("VICTRE", "1.3.6.1.4.1.30072.1.1.282583578114131492523999238318859942663", name="", sex="F")
    st = b.study(p, VICTRE, None, D(2017, 11, 20), "DBT")
    for k, description in enumerate(("DBT slices", "DBT projections", "Mammo CC", "Mammo MLO"), start=1):
        b.series(st, VICTRE, None, "MG", D(2019, 3, 8), 4, k, description, **mg)


CBIS = "1.3.6.1.4.1.9590.100.1.2."


def _cbis_ddsm(b: _Builder) -> None:
    b.collection("CBIS-DDSM", site="DDSM", doi="https://doi.org/10.7937/K9/TCIA.2016.7O02S9CY")
    mg = {"body_part": "BREAST", "manufacturer": "HOWTEK", "model": "MultiRad850"}
    for pid, name, study_uid, released in (
        ("Mass-Training_P_01009_RIGHT_CC_1", "P_01009^P_01009", None, D(2016, 9, 14)),
        ("Calc-Test_P_00038_LEFT_CC", "P_00038^P_00038", None, D(2017, 9, 15)),
        ("Mass-Test_P_00040", "P_00040^P_00040", "1.3.6.1.4.1.9328.50.1.11024", D(2017, 9, 15)),
    ):
        p = b.patient("CBIS-DDSM", pid, name=name, sex="F")
        st = b.study(p, CBIS, study_uid, D(2008, 7, 1), "DDSM")
        b.series(st, CBIS, None, "MG", released, 1, 1, "full mammogram images", **mg)


def _tcga_kirc(b: _Builder) -> None:
    root = TCIA + "6450.4012."
    b.collection("TCGA-KIRC", site="TCGA", doi="https://doi.org/10.7937/K9/TCIA.2016.V6PBVTDR",
                 license_name=CC_BY_3, license_uri=CC_BY_3_URI)  # fmt: skip
    p = b.patient("TCGA-KIRC", "TCGA-BP-4170", sex="M")
    st = b.study(p, root, None, D(1995, 10, 3), "CT ABDOMEN W/WO", "059Y")
    ct = {"manufacturer": "Philips", "model": "Brilliance 64", "software": "2.2.5"}
    # Body parts are dirty free text on the real servers (trailing space included).
    b.series(st, root, None, "CT", D(2012, 10, 1), 10, 2, "ABD WO", body_part="BD CT ABD WO_W ", **ct)
    b.series(st, root, None, "CT", D(2012, 10, 1), 10, 3, "ABD W", body_part="ABDOMEN", **ct)
    b.series(st, root, None, "PT", D(2012, 10, 1), 6, 4, "PET WB", body_part="ABDOMEN",
             manufacturer="SIEMENS", model="Biograph 40")  # fmt: skip


# --- datasets ---------------------------------------------------------------------------------------------


def default_catalog() -> Catalog:
    b = _Builder()
    for add in (_4d_lung, _cbis_ddsm, _lidc_idri, _tcga_brca, _tcga_gbm, _tcga_kirc, _victre):
        add(b)
    b.catalog.shared_lists = {
        "sharedListApiUnitTest": [GBM_SERIES, BRCA_SERIES, LIDC_DX],
        "nbia-49121659384603347": [LUNG4D_SERIES, LUNG4D + "169813524397777042080157516872"],
    }
    return b.catalog


def test_catalog() -> Catalog:
    b = _Builder()
    _tcga_gbm(b, small=True)
    b.catalog.shared_lists = {
        "sharedListApiUnitTest": [s.series_instance_uid for s in b.catalog.series[:2]],
    }
    return b.catalog


def scaled_catalog() -> Catalog:
    catalog = default_catalog()
    catalog.scaled = True
    return catalog


DATASETS: dict[str, Callable[[], Catalog]] = {
    "default": default_catalog,
    "test": test_catalog,
    "scaled": scaled_catalog,
}

__all__ = ["CC_BY_4", "CC_BY_4_URI", "DATASETS", "default_catalog", "scaled_catalog", "test_catalog"]
