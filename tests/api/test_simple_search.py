"""The getSimpleSearch criteria builder: validation before anything is sent, the form it renders, its answer flattened."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_tcia.api.simple_search import SimpleSearch, flatten, total_patients
from airflow_provider_tcia.exceptions import TciaBadRequestError

UID = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"


def test_the_form_has_one_index_per_value_and_the_paging_fields():
    criteria = SimpleSearch(
        collections=["TCGA-GBM", "TCGA-BRCA"],
        modalities=("MR", "CT"),
        all_modalities=True,
        date_range=(dt.date(2001, 2, 3), "2002-12-31"),
        min_studies=2,
        third_party_analysis=False,
        sort_field="collection",
        sort_direction="descending",
    )
    assert criteria.form(500, 100) == [
        ("criteriaType0", "CollectionCriteria"), ("value0", "TCGA-GBM"),
        ("criteriaType1", "CollectionCriteria"), ("value1", "TCGA-BRCA"),
        ("criteriaType2", "ImageModalityCriteria"), ("value2", "MR"),
        ("criteriaType3", "ImageModalityCriteria"), ("value3", "CT"),
        ("criteriaType4", "ModalityAndedSearchCriteria"), ("value4", "all"),
        ("criteriaType5", "DateRangeCriteria"), ("fromDate5", "02-03-2001"), ("toDate5", "12-31-2002"),
        ("criteriaType6", "MinNumberOfStudiesCriteria"), ("value6", "2"),
        ("criteriaType7", "ThirdPartyAnalysis"), ("value7", "no"),
        ("sortField", "collection"), ("sortDirection", "descending"), ("start", "500"), ("size", "100"),
    ]  # fmt: skip


def test_a_string_is_one_value_and_duplicates_go():
    criteria = SimpleSearch(collections="TCGA-GBM", patient_ids=["A", "A", 17])
    assert criteria.collections == ("TCGA-GBM",) and criteria.patient_ids == ("A", "17")
    assert criteria == SimpleSearch(collections=["TCGA-GBM"], patient_ids=("A", "17"))  # frozen, comparable
    with pytest.raises(AttributeError):
        criteria.collections = ("X",)  # type: ignore[misc]


def test_from_mapping_takes_what_a_template_renders():
    criteria = SimpleSearch.from_mapping(
        {"collections": ["TCGA-GBM"], "min_studies": "2", "exclude_commercial": "true", "species": None}
    )
    assert criteria.min_studies == 2 and criteria.exclude_commercial is True and criteria.species == ()
    with pytest.raises(TciaBadRequestError, match="no criterion collection; it takes"):
        SimpleSearch.from_mapping({"collection": "TCGA-GBM"})


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({}, "at least one criterion"),
        ({"collections": [""]}, "empty string"),
        ({"collections": {"a": 1}}, "a string or a list of strings"),
        ({"collections": [1]}, "must hold strings"),
        ({"series_instance_uids": ["1.2.x"]}, "not a DICOM UID"),
        ({"date_range": "2001-01-01"}, "a pair"),
        ({"date_range": ("2001-01-01",)}, "a pair"),
        ({"date_range": ("2002-01-01", "2001-01-01")}, "starts after it ends"),
        ({"collections": "C", "min_studies": -1}, "min_studies"),
        ({"collections": "C", "all_modalities": "yes"}, "all_modalities must be True or False"),
        ({"collections": "C", "sort_direction": "up"}, "ascending or descending"),
    ],
)
def test_bad_criteria_are_refused(given, match):
    with pytest.raises(TciaBadRequestError, match=match):
        SimpleSearch(**given)


def test_flatten_gives_one_row_per_series():
    answer = {
        "totalPatients": 2,
        "resultSet": [
            {
                "id": 1, "subjectId": "P1", "project": "C", "totalNumberOfStudies": 1, "totalNumberOfSeries": 2,
                "studyIdentifiers": [
                    {"studyIdentifier": 10, "seriesIdentifiers": [100, 101],
                     "seriesAndModality": [{"seriesId": 100, "modality": "CT"}]},
                ],
            },
            {"id": 2, "subjectId": "P2", "project": "C"},
        ],
    }  # fmt: skip
    assert list(flatten(answer)) == [
        {"Collection": "C", "PatientID": "P1", "StudyIdentifier": 10, "SeriesIdentifier": 100, "Modality": "CT",
         "TotalNumberOfStudies": 1, "TotalNumberOfSeries": 2},
        {"Collection": "C", "PatientID": "P1", "StudyIdentifier": 10, "SeriesIdentifier": 101,
         "TotalNumberOfStudies": 1, "TotalNumberOfSeries": 2},
        {"Collection": "C", "PatientID": "P2"},
    ]  # fmt: skip
    assert total_patients(answer) == 2 and total_patients({}) == 0
    with pytest.raises(ValueError):
        total_patients({"totalPatients": "2"})


def test_the_new_criteria_are_sent_as_nbia_reads_them():
    """SearchUtil.getPatients_v4: ranges as from{i}/to{i}, a description and a phantom option as value{i},
    exclude-commercial as YES (DataLicenseCriteria filters on nothing else), a time point as eventType{i} with
    fromDay{i}/toDay{i} only for the ends given."""
    criteria = SimpleSearch(
        patient_age_range=(40, "60"),
        pixel_spacing_range=[0.5, 1.25],
        slice_thickness_range=("1.0", 5),
        description='  ax  "t1 post" ',
        phantom="Exclude",
        exclude_commercial=True,
        time_point_event="Diagnosis",
        time_point_days=(-30, None),
    )
    assert criteria.form(0, 10) == [
        ("criteriaType0", "PatientAgeRangeCriteria"), ("from0", "40"), ("to0", "60"),
        ("criteriaType1", "PixelSpacingRangeCriteria"), ("from1", "0.5"), ("to1", "1.25"),
        ("criteriaType2", "SliceThicknessRangeCriteria"), ("from2", "1"), ("to2", "5"),
        ("criteriaType3", "DescriptionCriteria"), ("value3", 'ax "t1 post"'),
        ("criteriaType4", "PhantomCriteria"), ("value4", "1"),
        ("criteriaType5", "ExcludeCommercialCriteria"), ("value5", "YES"),
        ("criteriaType6", "TimePointCriteria"), ("eventType6", "Diagnosis"), ("fromDay6", "-30"),
        ("sortField", "subject"), ("sortDirection", "ascending"), ("start", "0"), ("size", "10"),
    ]  # fmt: skip
    assert SimpleSearch(phantom="only").criteria() == [("PhantomCriteria", (("value", "2"),))]
    assert SimpleSearch(time_point_event="Diagnosis", time_point_days=("0", "365")).criteria() == [
        ("TimePointCriteria", (("eventType", "Diagnosis"), ("fromDay", "0"), ("toDay", "365")))
    ]
    # each one counts as a criterion on its own
    assert SimpleSearch(description="flair").criteria() == [("DescriptionCriteria", (("value", "flair"),))]


def test_the_new_criteria_from_a_mapping_as_a_template_renders_them():
    criteria = SimpleSearch.from_mapping(
        {
            "patient_age_range": ["40", "60.5"],
            "slice_thickness_range": ("0", "2.5"),
            "phantom": "only",
            "time_point_event": "Diagnosis",
            "time_point_days": ["None", "30"],
        }
    )
    assert criteria.patient_age_range == (40.0, 60.5) and criteria.slice_thickness_range == (0.0, 2.5)
    assert criteria.phantom == "only" and criteria.time_point_days == (None, 30)
    assert criteria.describe() == (
        "getSimpleSearch(patient_age_range=(40.0, 60.5), slice_thickness_range=(0.0, 2.5), phantom='only', "
        "time_point_event='Diagnosis', time_point_days=(None, 30))"
    )


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"patient_age_range": (60, 40)}, r"patient_age_range starts after it ends: 60 > 40"),
        ({"patient_age_range": (-1, 40)}, r"patient_age_range\[0\] must not be negative"),
        ({"patient_age_range": ("forty", 60)}, r"patient_age_range\[0\] must be a number of years"),
        ({"patient_age_range": 40}, "patient_age_range must be a pair"),
        ({"patient_age_range": (40,)}, "patient_age_range must be a pair"),
        ({"pixel_spacing_range": (0.5, True)}, r"pixel_spacing_range\[1\] must be a number of mm"),
        ({"pixel_spacing_range": (0.5, float("nan"))}, r"pixel_spacing_range\[1\] must be a number of mm"),
        ({"slice_thickness_range": (5, 1)}, "slice_thickness_range starts after it ends"),
        ({"slice_thickness_range": "1-5"}, "slice_thickness_range must be a pair"),
        ({"description": "   "}, "description is empty"),
        ({"description": ["t1"]}, "description must be a string"),
        ({"phantom": "yes"}, "phantom must be 'exclude' or 'only'"),
        ({"phantom": True}, "phantom must be 'exclude' or 'only'"),
        ({"time_point_event": "Diagnosis"}, "time_point_event and time_point_days go together"),
        ({"time_point_days": (0, 30)}, "time_point_event and time_point_days go together"),
        ({"time_point_event": "D", "time_point_days": (0, 30)}, "two characters at least"),
        ({"time_point_event": "Diagnosis", "time_point_days": (None, None)}, "needs a from or a to day"),
        ({"time_point_event": "Diagnosis", "time_point_days": (30, 0)}, "time_point_days starts after it ends"),
        ({"time_point_event": "Diagnosis", "time_point_days": (0.5, 3)}, r"time_point_days\[0\] must be a whole"),
    ],
)
def test_bad_new_criteria_are_refused_naming_the_field(given, match):
    with pytest.raises(TciaBadRequestError, match=match):
        SimpleSearch(**given)


def test_describe_names_only_what_was_given():
    text = SimpleSearch(collections="TCGA-GBM", series_instance_uids=[UID]).describe()
    assert text == f"getSimpleSearch(collections=['TCGA-GBM'], series_instance_uids=['{UID}'])"
