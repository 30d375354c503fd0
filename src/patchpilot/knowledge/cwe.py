"""Names of the common CWE weaknesses, to title a finding "<package>: <weakness>".

A compact table, not the whole catalogue (about 940 entries): the CWE Top 25 of 2023 and
2024 and the weaknesses NVD, GitHub and the distributions name most often.  The names are
MITRE's, word for word, from the CWE List 4.14 (https://cwe.mitre.org/data/downloads.html,
``cwec_v4.14.xml``, ``Weakness/@Name``); tests/knowledge/test_cwe.py checks them against
the CWE names Microsoft's CVRF documents in ../shared/data quote.  An id missing here gives
no name, and the title falls back to the next source (findings/build.py).
"""

from __future__ import annotations

import re

__all__ = ["CWE_NAMES", "cwe_name"]

CWE_NAMES: dict[str, str] = {
    "CWE-20": "Improper Input Validation",
    "CWE-22": "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')",
    "CWE-23": "Relative Path Traversal",
    "CWE-59": "Improper Link Resolution Before File Access ('Link Following')",
    "CWE-74": "Improper Neutralization of Special Elements in Output Used by a Downstream "
              "Component ('Injection')",
    "CWE-77": "Improper Neutralization of Special Elements used in a Command ('Command "
              "Injection')",
    "CWE-78": "Improper Neutralization of Special Elements used in an OS Command ('OS Command "
              "Injection')",
    "CWE-79": "Improper Neutralization of Input During Web Page Generation ('Cross-site "
              "Scripting')",
    "CWE-88": "Improper Neutralization of Argument Delimiters in a Command ('Argument "
              "Injection')",
    "CWE-89": "Improper Neutralization of Special Elements used in an SQL Command ('SQL "
              "Injection')",
    "CWE-90": "Improper Neutralization of Special Elements used in an LDAP Query ('LDAP "
              "Injection')",
    "CWE-93": "Improper Neutralization of CRLF Sequences ('CRLF Injection')",
    "CWE-94": "Improper Control of Generation of Code ('Code Injection')",
    "CWE-113": "Improper Neutralization of CRLF Sequences in HTTP Headers ('HTTP "
               "Request/Response Splitting')",
    "CWE-116": "Improper Encoding or Escaping of Output",
    "CWE-117": "Improper Output Neutralization for Logs",
    "CWE-119": "Improper Restriction of Operations within the Bounds of a Memory Buffer",
    "CWE-120": "Buffer Copy without Checking Size of Input ('Classic Buffer Overflow')",
    "CWE-121": "Stack-based Buffer Overflow",
    "CWE-122": "Heap-based Buffer Overflow",
    "CWE-125": "Out-of-bounds Read",
    "CWE-126": "Buffer Over-read",
    "CWE-131": "Incorrect Calculation of Buffer Size",
    "CWE-134": "Use of Externally-Controlled Format String",
    "CWE-178": "Improper Handling of Case Sensitivity",
    "CWE-190": "Integer Overflow or Wraparound",
    "CWE-191": "Integer Underflow (Wrap or Wraparound)",
    "CWE-193": "Off-by-one Error",
    "CWE-200": "Exposure of Sensitive Information to an Unauthorized Actor",
    "CWE-203": "Observable Discrepancy",
    "CWE-208": "Observable Timing Discrepancy",
    "CWE-209": "Generation of Error Message Containing Sensitive Information",
    "CWE-248": "Uncaught Exception",
    "CWE-269": "Improper Privilege Management",
    "CWE-276": "Incorrect Default Permissions",
    "CWE-284": "Improper Access Control",
    "CWE-285": "Improper Authorization",
    "CWE-287": "Improper Authentication",
    "CWE-288": "Authentication Bypass Using an Alternate Path or Channel",
    "CWE-290": "Authentication Bypass by Spoofing",
    "CWE-294": "Authentication Bypass by Capture-replay",
    "CWE-295": "Improper Certificate Validation",
    "CWE-306": "Missing Authentication for Critical Function",
    "CWE-307": "Improper Restriction of Excessive Authentication Attempts",
    "CWE-311": "Missing Encryption of Sensitive Data",
    "CWE-312": "Cleartext Storage of Sensitive Information",
    "CWE-319": "Cleartext Transmission of Sensitive Information",
    "CWE-326": "Inadequate Encryption Strength",
    "CWE-327": "Use of a Broken or Risky Cryptographic Algorithm",
    "CWE-330": "Use of Insufficiently Random Values",
    "CWE-345": "Insufficient Verification of Data Authenticity",
    "CWE-346": "Origin Validation Error",
    "CWE-347": "Improper Verification of Cryptographic Signature",
    "CWE-352": "Cross-Site Request Forgery (CSRF)",
    "CWE-362": "Concurrent Execution using Shared Resource with Improper Synchronization "
               "('Race Condition')",
    "CWE-367": "Time-of-check Time-of-use (TOCTOU) Race Condition",
    "CWE-369": "Divide By Zero",
    "CWE-377": "Insecure Temporary File",
    "CWE-384": "Session Fixation",
    "CWE-400": "Uncontrolled Resource Consumption",
    "CWE-401": "Missing Release of Memory after Effective Lifetime",
    "CWE-404": "Improper Resource Shutdown or Release",
    "CWE-407": "Inefficient Algorithmic Complexity",
    "CWE-409": "Improper Handling of Highly Compressed Data (Data Amplification)",
    "CWE-415": "Double Free",
    "CWE-416": "Use After Free",
    "CWE-425": "Direct Request ('Forced Browsing')",
    "CWE-426": "Untrusted Search Path",
    "CWE-427": "Uncontrolled Search Path Element",
    "CWE-434": "Unrestricted Upload of File with Dangerous Type",
    "CWE-444": "Inconsistent Interpretation of HTTP Requests ('HTTP Request/Response "
               "Smuggling')",
    "CWE-457": "Use of Uninitialized Variable",
    "CWE-476": "NULL Pointer Dereference",
    "CWE-502": "Deserialization of Untrusted Data",
    "CWE-521": "Weak Password Requirements",
    "CWE-522": "Insufficiently Protected Credentials",
    "CWE-532": "Insertion of Sensitive Information into Log File",
    "CWE-601": "URL Redirection to Untrusted Site ('Open Redirect')",
    "CWE-611": "Improper Restriction of XML External Entity Reference",
    "CWE-613": "Insufficient Session Expiration",
    "CWE-617": "Reachable Assertion",
    "CWE-639": "Authorization Bypass Through User-Controlled Key",
    "CWE-665": "Improper Initialization",
    "CWE-668": "Exposure of Resource to Wrong Sphere",
    "CWE-670": "Always-Incorrect Control Flow Implementation",
    "CWE-674": "Uncontrolled Recursion",
    "CWE-682": "Incorrect Calculation",
    "CWE-697": "Incorrect Comparison",
    "CWE-703": "Improper Check or Handling of Exceptional Conditions",
    "CWE-704": "Incorrect Type Conversion or Cast",
    "CWE-732": "Incorrect Permission Assignment for Critical Resource",
    "CWE-754": "Improper Check for Unusual or Exceptional Conditions",
    "CWE-755": "Improper Handling of Exceptional Conditions",
    "CWE-770": "Allocation of Resources Without Limits or Throttling",
    "CWE-772": "Missing Release of Resource after Effective Lifetime",
    "CWE-776": "Improper Restriction of Recursive Entity References in DTDs ('XML Entity "
               "Expansion')",
    "CWE-787": "Out-of-bounds Write",
    "CWE-789": "Memory Allocation with Excessive Size Value",
    "CWE-798": "Use of Hard-coded Credentials",
    "CWE-822": "Untrusted Pointer Dereference",
    "CWE-824": "Access of Uninitialized Pointer",
    "CWE-834": "Excessive Iteration",
    "CWE-835": "Loop with Unreachable Exit Condition ('Infinite Loop')",
    "CWE-843": "Access of Resource Using Incompatible Type ('Type Confusion')",
    "CWE-862": "Missing Authorization",
    "CWE-863": "Incorrect Authorization",
    "CWE-908": "Use of Uninitialized Resource",
    "CWE-909": "Missing Initialization of Resource",
    "CWE-913": "Improper Control of Dynamically-Managed Code Resources",
    "CWE-915": "Improperly Controlled Modification of Dynamically-Determined Object "
               "Attributes",
    "CWE-917": "Improper Neutralization of Special Elements used in an Expression Language "
               "Statement ('Expression Language Injection')",
    "CWE-918": "Server-Side Request Forgery (SSRF)",
    "CWE-1021": "Improper Restriction of Rendered UI Layers or Frames",
    "CWE-1188": "Initialization of a Resource with an Insecure Default",
    "CWE-1236": "Improper Neutralization of Formula Elements in a CSV File",
    "CWE-1321": "Improperly Controlled Modification of Object Prototype Attributes "
                "('Prototype Pollution')",
    "CWE-1333": "Inefficient Regular Expression Complexity",
    "CWE-1336": "Improper Neutralization of Special Elements Used in a Template Engine",
}

_CWE_ID = re.compile(r"CWE-(\d+)", re.IGNORECASE)


def cwe_name(cwe: str) -> str | None:
    """MITRE's name of ``cwe`` (``CWE-79``, ``cwe-79``), or None when not in the table
    (NVD's placeholders ``NVD-CWE-Other`` and ``NVD-CWE-noinfo`` name no weakness)."""
    m = _CWE_ID.fullmatch(cwe.strip())
    return CWE_NAMES.get(f"CWE-{m.group(1)}") if m else None
