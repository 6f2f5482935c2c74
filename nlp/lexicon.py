"""Names the order extractor recognises, each mapped to its normalised form.

Plain data, standard library only. Keys are lower-case phrases as spoken
(brand names too); values are the normalised order names. Longer phrases win
over shorter ones when both match.
"""

from __future__ import annotations

__all__ = ["BODY_SITES", "DEVICES", "DRUG_SUFFIXES", "IMAGING", "LABS", "MEDICATIONS",
           "PROCEDURES", "SPECIALTIES", "phrase_table"]

_GENERICS = [
    "acetaminophen", "adalimumab", "albuterol", "alendronate", "allopurinol", "alprazolam",
    "amiodarone", "amitriptyline", "amlodipine", "amoxicillin", "apixaban", "aripiprazole",
    "aspirin", "atenolol", "atorvastatin", "azithromycin", "baclofen", "benazepril", "benzonatate",
    "bisoprolol", "budesonide", "bumetanide", "bupropion", "buspirone", "carvedilol", "cefdinir",
    "ceftriaxone", "celecoxib", "cephalexin", "cetirizine", "chlorthalidone", "ciprofloxacin",
    "citalopram", "clindamycin", "clobetasol", "clonazepam", "clonidine", "clopidogrel",
    "colchicine", "cyclobenzaprine", "dapagliflozin", "dexamethasone", "diclofenac", "digoxin",
    "diltiazem", "diphenhydramine", "docusate", "doxycycline", "dulaglutide", "duloxetine",
    "empagliflozin", "enalapril", "enoxaparin", "epinephrine", "escitalopram", "esomeprazole",
    "estradiol", "ezetimibe", "famotidine", "fenofibrate", "fexofenadine", "finasteride",
    "fluconazole", "fluoxetine", "fluticasone", "furosemide", "gabapentin", "glipizide",
    "glyburide", "guaifenesin", "haloperidol", "heparin", "hydralazine", "hydrochlorothiazide",
    "hydrocodone", "hydrocortisone", "hydroxychloroquine", "hydroxyzine", "ibuprofen",
    "indomethacin", "insulin", "irbesartan", "isosorbide", "ketorolac", "labetalol", "lamotrigine",
    "lansoprazole", "levetiracetam", "levofloxacin", "levothyroxine", "lidocaine", "linaclotide",
    "liraglutide", "lisinopril", "loperamide", "loratadine", "lorazepam", "losartan", "meclizine",
    "meloxicam", "metformin", "methimazole", "methocarbamol", "methotrexate", "methylprednisolone",
    "metoclopramide", "metolazone", "metoprolol", "metronidazole", "minocycline", "mirtazapine",
    "montelukast", "morphine", "mupirocin", "naloxone", "naltrexone", "naproxen", "nifedipine",
    "nitrofurantoin", "nitroglycerin", "nortriptyline", "olmesartan", "omeprazole", "ondansetron",
    "oseltamivir", "oxybutynin", "oxycodone", "pantoprazole", "paroxetine", "penicillin",
    "pioglitazone", "pravastatin", "prednisolone", "prednisone", "pregabalin", "promethazine",
    "propranolol", "quetiapine", "ramipril", "rivaroxaban", "rizatriptan", "rosuvastatin",
    "semaglutide", "sertraline", "sildenafil", "simvastatin", "sitagliptin", "spironolactone",
    "sucralfate", "sumatriptan", "tadalafil", "tamsulosin", "telmisartan", "terbinafine",
    "tiotropium", "tizanidine", "topiramate", "torsemide", "tramadol", "trazodone",
    "triamcinolone", "valacyclovir", "valsartan", "varenicline", "venlafaxine", "verapamil",
    "warfarin", "zolpidem", "tirzepatide", "ticagrelor", "dabigatran", "sacubitril",
    "ketoconazole", "tretinoin", "mesalamine", "ipratropium", "iron", "calcium", "multivitamin",
    "antibiotic", "antibiotics", "steroids",
]

_GENERIC_PHRASES = ["benzoyl peroxide", "polyethylene glycol", "potassium chloride",
                    "magnesium oxide", "vitamin d", "vitamin b12", "folic acid", "ferrous sulfate",
                    "fish oil", "nicotine patch", "steroid cream", "insulin glargine"]

_BRANDS = {
    "tylenol": "acetaminophen", "advil": "ibuprofen", "motrin": "ibuprofen", "aleve": "naproxen",
    "lasix": "furosemide", "coumadin": "warfarin", "glucophage": "metformin",
    "norvasc": "amlodipine", "lipitor": "atorvastatin", "crestor": "rosuvastatin",
    "zocor": "simvastatin", "synthroid": "levothyroxine", "prilosec": "omeprazole",
    "protonix": "pantoprazole", "nexium": "esomeprazole", "zoloft": "sertraline",
    "prozac": "fluoxetine", "lexapro": "escitalopram", "celexa": "citalopram",
    "wellbutrin": "bupropion", "xanax": "alprazolam", "ativan": "lorazepam", "ambien": "zolpidem",
    "flexeril": "cyclobenzaprine", "mobic": "meloxicam", "ultram": "tramadol",
    "neurontin": "gabapentin", "lyrica": "pregabalin", "keflex": "cephalexin",
    "augmentin": "amoxicillin-clavulanate", "zithromax": "azithromycin", "z-pack": "azithromycin",
    "z-pak": "azithromycin", "zpack": "azithromycin", "cipro": "ciprofloxacin",
    "bactrim": "sulfamethoxazole-trimethoprim", "flomax": "tamsulosin", "singulair": "montelukast",
    "flovent": "fluticasone", "flonase": "fluticasone", "advair": "fluticasone-salmeterol",
    "symbicort": "budesonide-formoterol", "spiriva": "tiotropium", "eliquis": "apixaban",
    "xarelto": "rivaroxaban", "plavix": "clopidogrel", "januvia": "sitagliptin",
    "jardiance": "empagliflozin", "farxiga": "dapagliflozin", "ozempic": "semaglutide",
    "wegovy": "semaglutide", "mounjaro": "tirzepatide", "trulicity": "dulaglutide",
    "victoza": "liraglutide", "lantus": "insulin glargine", "humalog": "insulin lispro",
    "novolog": "insulin aspart", "toprol": "metoprolol", "lopressor": "metoprolol",
    "coreg": "carvedilol", "zestril": "lisinopril", "prinivil": "lisinopril",
    "cozaar": "losartan", "diovan": "valsartan", "hctz": "hydrochlorothiazide",
    "aldactone": "spironolactone", "imitrex": "sumatriptan", "medrol": "methylprednisolone",
    "medrol dosepak": "methylprednisolone", "valtrex": "valacyclovir", "tamiflu": "oseltamivir",
    "zofran": "ondansetron", "reglan": "metoclopramide", "colace": "docusate",
    "miralax": "polyethylene glycol", "benadryl": "diphenhydramine", "claritin": "loratadine",
    "zyrtec": "cetirizine", "allegra": "fexofenadine", "mucinex": "guaifenesin",
    "pepcid": "famotidine", "imodium": "loperamide", "cialis": "tadalafil",
    "viagra": "sildenafil", "seroquel": "quetiapine", "abilify": "aripiprazole",
    "lamictal": "lamotrigine", "keppra": "levetiracetam", "topamax": "topiramate",
    "humira": "adalimumab", "plaquenil": "hydroxychloroquine", "kenalog": "triamcinolone",
    "voltaren": "diclofenac", "entresto": "sacubitril-valsartan", "zetia": "ezetimibe",
    "macrobid": "nitrofurantoin", "flagyl": "metronidazole", "diflucan": "fluconazole",
    "lamisil": "terbinafine", "norco": "hydrocodone-acetaminophen",
    "vicodin": "hydrocodone-acetaminophen", "percocet": "oxycodone-acetaminophen",
    "cymbalta": "duloxetine", "effexor": "venlafaxine", "paxil": "paroxetine",
    "celebrex": "celecoxib", "toradol": "ketorolac", "lovenox": "enoxaparin",
    "epipen": "epinephrine", "tessalon": "benzonatate", "chantix": "varenicline",
    "robaxin": "methocarbamol", "zanaflex": "tizanidine", "xyzal": "levocetirizine",
    "baby aspirin": "aspirin", "bumex": "bumetanide", "antibiotic": "antibiotics",
    "k-dur": "potassium chloride", "metformin er": "metformin",
    "vitamin d3": "vitamin d", "b12": "vitamin b12", "motrin ib": "ibuprofen",
    "nitro": "nitroglycerin", "prednisone taper": "prednisone", "steroid": "steroids",
}

MEDICATIONS: dict[str, str] = {
    **{g: g for g in _GENERICS}, **{g: g for g in _GENERIC_PHRASES}, **_BRANDS,
    "b12": "vitamin b12",
}

#: Unknown words with these endings are taken as drug names when a dose follows.
DRUG_SUFFIXES = ("pril", "sartan", "olol", "statin", "azole", "mycin", "cillin", "prazole",
                 "dipine", "gliptin", "gliflozin", "glutide", "oxacin", "cycline", "vir",
                 "mab", "semide", "tidine", "triptan", "zepam", "azepam", "barb", "parin",
                 "xaban", "afil", "terol", "sone", "olone", "lukast", "tadine", "pine")

LABS: dict[str, str] = {
    "cbc": "cbc", "complete blood count": "cbc", "blood count": "cbc",
    "bmp": "bmp", "basic metabolic panel": "bmp", "chem 7": "bmp", "chem-7": "bmp",
    "cmp": "cmp", "comprehensive metabolic panel": "cmp", "metabolic panel": "cmp",
    "lipid panel": "lipid panel", "lipid profile": "lipid panel", "cholesterol panel":
    "lipid panel", "cholesterol": "lipid panel", "lipids": "lipid panel",
    "a1c": "hemoglobin a1c", "hemoglobin a1c": "hemoglobin a1c", "hba1c": "hemoglobin a1c",
    "tsh": "tsh", "thyroid panel": "thyroid panel", "thyroid function": "thyroid panel",
    "thyroid levels": "thyroid panel", "thyroid studies": "thyroid panel",
    "urinalysis": "urinalysis", "urine analysis": "urinalysis", "ua": "urinalysis",
    "urine test": "urinalysis", "urine sample": "urinalysis", "urine culture": "urine culture",
    "blood culture": "blood culture", "blood cultures": "blood culture",
    "psa": "psa", "vitamin d level": "vitamin d level", "b12 level": "vitamin b12 level",
    "iron studies": "iron studies", "iron panel": "iron studies", "ferritin": "ferritin",
    "liver function tests": "liver function tests", "liver function test": "liver function tests",
    "lfts": "liver function tests", "lft": "liver function tests",
    "liver enzymes": "liver function tests", "hepatic function panel": "liver function tests",
    "kidney function": "renal function", "renal function": "renal function",
    "creatinine": "renal function", "inr": "inr", "pt/inr": "inr",
    "coagulation": "coagulation panel",
    "troponin": "troponin", "bnp": "bnp", "d-dimer": "d-dimer", "esr": "esr",
    "sed rate": "esr", "crp": "crp", "c-reactive protein": "crp", "strep test": "strep test",
    "rapid strep": "strep test", "covid test": "covid test", "covid-19 test": "covid test",
    "hiv test": "hiv test", "hepatitis panel": "hepatitis panel", "pregnancy test":
    "pregnancy test", "blood work": "blood work", "bloodwork": "blood work", "labs": "blood work",
    "lab work": "blood work", "blood test": "blood work", "blood tests": "blood work",
    "glucose": "glucose", "blood sugar": "glucose", "fasting glucose": "glucose",
    "electrolytes": "electrolytes", "potassium level": "potassium", "magnesium level": "magnesium",
    "sputum culture": "sputum culture", "stool sample": "stool studies", "stool culture":
    "stool studies", "stool studies": "stool studies", "ana": "ana", "rheumatoid factor":
    "rheumatoid factor", "uric acid": "uric acid", "testosterone": "testosterone",
    "cortisol": "cortisol", "lyme": "lyme titer", "lyme titer": "lyme titer",
    "mono test": "mono test", "culture": "culture", "autoimmune panel": "autoimmune panel",
    "hemoglobin": "hemoglobin", "platelets": "platelets", "white count": "cbc",
    "white blood cell count": "cbc", "vitamin d": "vitamin d level", "microalbumin":
    "urine microalbumin", "urine microalbumin": "urine microalbumin", "allergy testing":
    "allergy testing", "allergy test": "allergy testing", "lipase": "lipase",
    "amylase": "amylase", "ck": "ck", "cpk": "ck", "bun": "renal function", "gfr": "renal function",
    "viral load": "viral load", "cd4": "cd4 count", "cd4 count": "cd4 count",
    "thyroid": "thyroid panel", "iron": "iron studies", "fructosamine": "fructosamine",
    "folate": "folate", "b12": "vitamin b12 level",
    "western blot": "western blot", "wound culture": "wound culture",
}

IMAGING: dict[str, str] = {
    "x-ray": "x-ray", "x-rays": "x-ray", "xray": "x-ray", "x ray": "x-ray", "radiograph": "x-ray",
    "mri": "mri", "mra": "mra", "ct": "ct", "ct scan": "ct", "cat scan": "ct", "cta": "ct",
    "ultrasound": "ultrasound", "sonogram": "ultrasound", "doppler": "ultrasound",
    "echocardiogram": "echocardiogram", "echo": "echocardiogram", "mammogram": "mammogram",
    "dexa": "dexa scan", "dexa scan": "dexa scan", "bone density": "dexa scan",
    "pet scan": "pet scan", "nuclear stress test": "nuclear stress test",
    "bone scan": "bone scan", "imaging": "imaging", "carotid ultrasound": "ultrasound",
    "venous doppler": "ultrasound", "arterial doppler": "ultrasound",
}

PROCEDURES: dict[str, str] = {
    "ekg": "ekg", "ecg": "ekg", "electrocardiogram": "ekg", "stress test": "stress test",
    "holter monitor": "holter monitor", "holter": "holter monitor", "event monitor":
    "event monitor", "heart monitor": "heart monitor", "zio patch": "heart monitor",
    "sleep study": "sleep study", "pulmonary function test": "pulmonary function tests",
    "pulmonary function tests": "pulmonary function tests", "pfts": "pulmonary function tests",
    "pft": "pulmonary function tests", "emg": "emg", "nerve conduction study":
    "nerve conduction study", "nerve conduction studies": "nerve conduction study",
    "colonoscopy": "colonoscopy", "endoscopy": "endoscopy", "egd": "endoscopy",
    "biopsy": "biopsy", "injection": "injection", "steroid injection": "steroid injection",
    "cortisone injection": "steroid injection", "cortisone shot": "steroid injection",
    "steroid shot": "steroid injection", "flu shot": "influenza vaccine",
    "flu vaccine": "influenza vaccine", "tetanus shot": "tetanus vaccine",
    "pneumonia vaccine": "pneumococcal vaccine", "shingles vaccine": "shingles vaccine",
    "surgery": "surgery", "cardiac catheterization": "cardiac catheterization",
    "heart catheterization": "cardiac catheterization", "cath": "cardiac catheterization",
    "stent": "stent", "ablation": "ablation", "aspiration": "aspiration",
    "stitches": "sutures", "sutures": "sutures", "cardioversion": "cardioversion",
    "pap smear": "pap smear", "bronchoscopy": "bronchoscopy", "arthroscopy": "arthroscopy",
    "lumbar puncture": "lumbar puncture", "spinal tap": "lumbar puncture",
    "nerve block": "nerve block", "epidural": "epidural steroid injection",
    "incision and drainage": "incision and drainage", "i&d": "incision and drainage",
    "debridement": "debridement", "excision": "excision", "repair": "repair",
    "knee replacement": "knee replacement", "hip replacement": "hip replacement",
    "cystoscopy": "cystoscopy", "tee": "transesophageal echocardiogram",
    "cortisone": "steroid injection", "lithotripsy": "lithotripsy",
    "visual field test": "visual field test", "visual field testing": "visual field test",
    "radiation": "radiation therapy", "radiation therapy": "radiation therapy",
    "chemotherapy": "chemotherapy",
}

SPECIALTIES: dict[str, str] = {
    "cardiology": "cardiology", "cardiologist": "cardiology", "dermatology": "dermatology",
    "dermatologist": "dermatology", "orthopedics": "orthopedics", "orthopedic": "orthopedics",
    "orthopedist": "orthopedics", "orthopedic surgeon": "orthopedics", "ortho": "orthopedics",
    "neurology": "neurology", "neurologist": "neurology", "neurosurgery": "neurosurgery",
    "neurosurgeon": "neurosurgery", "physical therapy": "physical therapy",
    "physical therapist": "physical therapy", "pt": "physical therapy",
    "occupational therapy": "occupational therapy", "nutritionist": "nutrition",
    "dietitian": "nutrition", "dietician": "nutrition", "nutrition": "nutrition",
    "endocrinology": "endocrinology", "endocrinologist": "endocrinology",
    "gastroenterology": "gastroenterology", "gastroenterologist": "gastroenterology",
    "gi": "gastroenterology", "pulmonology": "pulmonology", "pulmonologist": "pulmonology",
    "rheumatology": "rheumatology", "rheumatologist": "rheumatology", "urology": "urology",
    "urologist": "urology", "gynecology": "gynecology", "gynecologist": "gynecology",
    "ob-gyn": "gynecology", "obgyn": "gynecology", "psychiatry": "psychiatry",
    "psychiatrist": "psychiatry", "therapist": "behavioral health", "counselor":
    "behavioral health", "counseling": "behavioral health", "psychologist": "behavioral health",
    "therapy": "behavioral health", "behavioral health": "behavioral health",
    "ent": "ent", "ear, nose, and throat": "ent", "ophthalmology": "ophthalmology",
    "ophthalmologist": "ophthalmology", "eye doctor": "ophthalmology", "podiatry": "podiatry",
    "podiatrist": "podiatry", "oncology": "oncology", "oncologist": "oncology",
    "nephrology": "nephrology", "nephrologist": "nephrology", "general surgery": "surgery",
    "surgeon": "surgery", "allergist": "allergy", "allergy": "allergy",
    "sleep medicine": "sleep medicine", "pain management": "pain management",
    "pain clinic": "pain management", "hand surgeon": "hand surgery",
    "vascular surgery": "vascular surgery", "vascular surgeon": "vascular surgery",
    "cardiac rehab": "cardiac rehabilitation", "speech therapy": "speech therapy",
    "chiropractor": "chiropractic", "hematology": "hematology", "hematologist": "hematology",
    "infectious disease": "infectious disease", "specialist": "specialist",
    "wound care": "wound care", "diabetes educator": "diabetes education",
    "electrophysiology": "electrophysiology", "electrophysiologist": "electrophysiology",
    "interventional radiology": "interventional radiology", "hepatology": "hepatology",
    "sports medicine": "sports medicine", "audiology": "audiology", "cardiothoracic surgeon":
    "cardiothoracic surgery", "spine surgeon": "spine surgery",
    "plastic surgeon": "plastic surgery",
}

DEVICES: dict[str, str] = {
    "brace": "brace", "knee brace": "brace", "wrist brace": "brace", "ankle brace": "brace",
    "splint": "splint", "wrist splint": "splint", "sling": "sling", "crutches": "crutches",
    "walker": "walker", "cane": "cane", "boot": "walking boot", "walking boot": "walking boot",
    "cast": "cast", "cpap": "cpap", "nebulizer": "nebulizer", "glucometer": "glucometer",
    "blood pressure cuff": "blood pressure cuff", "compression stockings":
    "compression stockings", "ace wrap": "ace wrap", "strainer": "urine strainer",
    "wheelchair": "wheelchair", "continuous glucose monitor": "continuous glucose monitor",
    "insoles": "orthotics", "orthotics": "orthotics",
}

BODY_SITES = ("chest", "abdomen", "abdominal", "pelvis", "pelvic", "head", "brain", "neck",
              "cervical spine", "thoracic spine", "lumbar spine", "spine", "back", "lower back",
              "shoulder", "elbow", "wrist", "hand", "finger", "thumb", "hip", "knee", "ankle",
              "foot", "toe", "heart", "kidney", "kidneys", "renal", "liver", "gallbladder",
              "thyroid", "carotid", "carotids", "leg", "legs", "arm", "sinus", "sinuses",
              "lung", "lungs", "breast", "bladder", "prostate", "spleen", "heel", "forearm")


def phrase_table() -> dict[str, tuple[str, str]]:
    """Every known phrase → (kind, normalised name)."""
    table: dict[str, tuple[str, str]] = {}
    for kind, names in (("other", DEVICES), ("referral", SPECIALTIES),
                        ("procedure", PROCEDURES), ("imaging", IMAGING), ("lab", LABS),
                        ("medication", MEDICATIONS)):
        for phrase, name in names.items():
            table.setdefault(phrase, (kind, name))
    return table
