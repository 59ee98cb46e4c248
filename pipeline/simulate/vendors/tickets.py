"""Helpdesk ticket emitter: a simulator TicketIntent written down as the helpdesk exports it,
exactly the shapes `pipeline.sources.tickets` reads.

- ServiceNow: one incident record of the Table API (`GET /api/now/table/incident`, an item of
  `result`), actual values (`sysparm_display_value=false`) with the caller's dot-walked
  `caller_id.email` / `caller_id.user_name` added by `sysparm_fields`.
- Jira Service Management: one issue of the REST API, v3 (Cloud: ADF description, reporter
  by accountId + e-mail, request type custom field) or v2 (Data Center: plain-text
  description, reporter by username), drawn per ticket so both shapes are exercised.

The text is drawn from several templates per scenario with variable parts (devices, places,
apps). The simulator's truth counts tickets per scenario, so every template is written to
classify to its scenario under the shipped rules (tests/test_simulate_tickets.py checks
every template with every value of every slot). `other` models the fallback nobody wrote a
runbook for: passkeys inside remote-desktop / VDI sessions (Citrix, Horizon, AVD, Cloud PC,
WorkSpaces, RDP), plus a few unrelated everyday issues. These templates are kept apart from
the phrasings the classifier's accuracy is measured on (tests/test_classify_tickets.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.model import Method, Scenario
from pipeline.simulate.intents import TicketIntent

__all__ = ["SLOTS", "SUPPORTED_METHODS", "TEMPLATES", "Template", "emit_ticket", "render"]

# Tickets log no authentication factor.
SUPPORTED_METHODS: frozenset[Method] = frozenset()

SERVICENOW_INSTANCE = "https://acme.service-now.com"
JIRA_CLOUD = "https://acme.atlassian.net"
JIRA_DATA_CENTER = "https://jira.acme.example"
JIRA_PROJECT = "HELP"
JIRA_V3_SHARE = 0.6  # the rest are read through Jira Data Center's v2 API


@dataclass(frozen=True, slots=True)
class Template:
    summary: str
    description: str  # paragraphs separated by a blank line


# Values of the {slots}; every value keeps every template it appears in on its scenario.
SLOTS: dict[str, tuple[str, ...]] = {
    "phone": ("iPhone 15", "iPhone 14 Pro", "Pixel 8", "Galaxy S23", "work phone", "Android phone"),
    "iphone": ("iPhone 13", "iPhone 15 Pro", "iPhone SE"),
    "laptop": ("ThinkPad X1 Carbon", "MacBook Pro", "Surface Laptop 5", "work laptop", "laptop"),
    "mac": ("MacBook Air", "MacBook Pro", "Mac"),
    "seckey": (
        "YubiKey 5C NFC",
        "YubiKey 5 NFC",
        "YubiKey Bio",
        "Feitian ePass FIDO2 key",
        "security key",
        "Titan security key",
    ),
    "when": ("this morning", "last night", "yesterday", "on Saturday", "over the weekend"),
    "where_theft": ("on the train", "at the gym", "from my car", "at a bar", "on the bus"),
    "where_lost": ("at the airport", "on the way home", "at a conference", "in town"),
    "water": ("the sink", "the pool", "the toilet", "the sea"),
    "city": ("London", "Madrid", "New York", "Toronto", "Sydney"),
    "office": ("Leeds", "Munich", "Austin", "Dublin"),
    "app": ("Workday", "Salesforce", "SAP", "the finance portal", "GitHub", "Outlook"),
    "since": ("the last update", "Monday", "the BIOS update", "last week"),
    "finger": ("thumb", "index finger", "right thumb"),
    "kiosk_place": ("front desk", "reception desk", "nurses' station"),
    "area": ("break room", "canteen", "lobby", "warehouse"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday"),
    "task": ("approve payroll", "close the quarter", "run the release", "pay suppliers"),
    "brand": ("DocuSign", "Microsoft 365", "the IT service desk"),
    "month": ("January", "February", "March"),
    "error": ("0x80090016", "AADSTS50097", "0x801c03ed"),
    "cn_city": ("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Chengdu", "Hangzhou"),
    "cn_brand": ("Huawei", "Xiaomi", "Honor"),
    "vdi": (
        "Citrix Workspace",
        "VMware Horizon",
        "Azure Virtual Desktop",
        "Windows 365 Cloud PC",
        "Amazon WorkSpaces",
    ),
    "host": ("the jump host", "my build server", "the finance terminal server"),
    "team": ("Finance", "Marketing", "Data Platform"),
}

T = Template
TEMPLATES: dict[Scenario, tuple[Template, ...]] = {
    Scenario.LOST_DEVICE: (
        T(
            "{phone} stolen - can't sign in",
            "My {phone} was stolen {where_theft} {when}. It had my passkey for {app}, "
            "so I can't sign in to anything.\n\nCan you disable it?",
        ),
        T(
            "Lost my {phone}",
            "I lost my {phone} {where_lost} {when} and the passkey for {app} was on it. "
            "I need to get back into {app} today.",
        ),
        T(
            "Laptop died - Windows Hello gone",
            "My {laptop} died {when} and won't turn on anymore. Windows Hello was set up on "
            "it, so I can't sign in to {app}.",
        ),
        T(
            "{phone} went through the washing machine",
            "My {phone} went through the washing machine {when} and is completely dead.\n"
            "My passkeys for {app} were on it.",
        ),
        T(
            "Dropped my {phone} in {water}",
            "I dropped my {phone} in {water} {when}; it won't power on. I need a temporary "
            "access pass for {app} until I get a replacement.",
        ),
        T(
            "Left my {phone} in a taxi",
            "I left my {phone} in a taxi in {city} {when}. The taxi company hasn't found it "
            "and my {app} passkey was on it.",
        ),
    ),
    Scenario.LOST_SECURITY_KEY: (
        T(
            "Lost my {seckey}",
            "I lost my {seckey} {where_lost} {when}. Please revoke it and issue a temporary "
            "access pass.",
        ),
        T(
            "{seckey} stolen",
            "My {seckey} was stolen along with my bag {where_theft} {when}. I use it for {app}.",
        ),
        T(
            "{seckey} snapped",
            "My {seckey} snapped in half {when} and no longer fits the USB port.",
        ),
        T(
            "Forgot my {seckey} at home",
            "I forgot my {seckey} at home and I'm in the {office} office today.\n"
            "Can I get temporary access to {app}?",
        ),
        T(
            "{seckey} went through the wash",
            "My {seckey} was in my jeans and went through the wash {when}. It doesn't light "
            "up anymore.",
        ),
    ),
    Scenario.BIOMETRIC_FAILURE: (
        T(
            "Fingerprint not recognised on my {laptop}",
            "Since {since} the fingerprint reader on my {laptop} keeps rejecting my finger, so "
            "Windows Hello drops back to the PIN every time.",
        ),
        T(
            "Face ID keeps failing",
            "Face ID on my {iphone} has stopped recognising me since {since}, so I can't "
            "approve {app} sign-ins with my passkey.",
        ),
        T(
            "Touch ID not working on my {mac}",
            "Touch ID on my {mac} says 'try again' every time since {since}.",
        ),
        T(
            "Windows Hello face recognition fails",
            "Since {since} Windows Hello face recognition fails on my {laptop} and I have to "
            "type the PIN for {app}.",
        ),
        T(
            "Fingerprint sensor won't accept my {finger}",
            "I cut my {finger} {when} and the fingerprint sensor won't accept it anymore.",
        ),
    ),
    Scenario.KIOSK_DEVICE: (
        T(
            "Shared PC at the {kiosk_place} asks for Windows Hello",
            "We use the shared PC at the {kiosk_place} on rotation and it asks each of us to "
            "set up Windows Hello and a passkey.",
        ),
        T(
            "Can't sign in on the kiosk in the {area}",
            "The kiosk in the {area} asks for a passkey to open {app}, but none of us has one "
            "on that device.",
        ),
        T(
            "Passkey on a loaner laptop",
            "I'm on a loaner laptop from the service desk this week and there is no passkey "
            "on it. How do I sign in to {app}?",
        ),
        T(
            "Hot desk PCs ask for a passkey every day",
            "I hot-desk at the {office} office and every desk PC asks me to register a "
            "passkey again.",
        ),
        T(
            "Handheld scanners in the {area}",
            "Pickers share the handheld scanners between shifts. How do they sign in to {app} "
            "with passkeys?",
        ),
    ),
    Scenario.PHISHING_LOCKDOWN: (
        T(
            "Locked out since the phishing incident",
            "Security locked all accounts after the phishing incident on {weekday}. I need "
            "emergency access to {app} to {task}.",
        ),
        T(
            "Emergency access needed during the lockdown",
            "We're in a security lockdown and my passkey is rejected.\n\nI have to {task} today.",
        ),
        T(
            "Account disabled after a phishing email",
            "I clicked a link in a phishing email pretending to be {brand} and the SOC "
            "disabled my account. I can't open {app}.",
        ),
        T(
            "All sessions revoked - cannot sign in",
            "After the attack on {weekday} all sessions were revoked and my sign-in to {app} "
            "fails.",
        ),
    ),
    Scenario.MNA_INTEGRATION: (
        T(
            "Northwind laptop still in the old tenant",
            "I joined with the Northwind acquisition and my laptop is still joined to the "
            "Northwind tenant, so I can't register a passkey in ours.",
        ),
        T(
            "Can't enroll a passkey after the merger",
            "Since the merger my {app} account still points at Northwind's Okta and passkey "
            "enrollment fails.",
        ),
        T(
            "Acquired employee - Windows Hello enrollment fails",
            "We were acquired from Northwind in {month}; Windows Hello for Business "
            "enrollment fails with {error}.",
        ),
        T(
            "Northwind staff can't use passkeys for {app}",
            "Former Northwind staff can't use passkeys for {app}: our accounts are B2B guests "
            "in the acquiring company's tenant.",
        ),
    ),
    Scenario.UNSUPPORTED_COUNTRY: (
        T(
            "Passkey prompt never shows in {cn_city}",
            "I'm working from our {cn_city} office and the passkey prompt never shows on the "
            "sign-in page for {app}.",
        ),
        T(
            "Authenticator app not available in China",
            "Microsoft Authenticator can't be downloaded from the app store here in {cn_city}, "
            "so I can't set up phone sign-in.",
        ),
        T(
            "Google Password Manager passkeys in {cn_city}",
            "My {cn_brand} Android phone has no Google Play services, so Google Password "
            "Manager passkeys don't work in {cn_city}.",
        ),
        T(
            "Business trip to {cn_city} - passkey not offered",
            "I'm on a business trip to {cn_city} and the passkey option is not available; "
            "the sign-in page for {app} times out.",
        ),
    ),
    Scenario.OTHER: (
        # the fallback without a runbook: passkeys inside remote-desktop / VDI sessions
        T(
            "Passkey sign-in fails inside {vdi}",
            "When I sign in to {app} from my {vdi} session the passkey dialog spins and then "
            "errors. Outside {vdi} it works fine.",
        ),
        T(
            "Security key not detected in {vdi}",
            "My security key isn't detected when I'm connected to {vdi}. WebAuthn "
            "redirection seems to be off.",
        ),
        T(
            "Windows Hello not offered over Remote Desktop",
            "When I connect to {host} over Remote Desktop, Windows Hello isn't offered for "
            "{app} and I'm asked for a password.",
        ),
        T(
            "FIDO2 prompt hangs in {vdi}",
            "The FIDO2 prompt hangs inside {vdi} when I open {app}; it never completes.",
        ),
        T(
            "Phone sign-in QR code inside {vdi}",
            "Cross-device sign-in shows a QR code inside {vdi}, but my phone can't connect "
            "because Bluetooth isn't passed through to the session.",
        ),
        # everyday issues unrelated to the rollout
        T(
            "Outlook keeps asking me to sign in",
            "Outlook on my laptop asks me to sign in again every hour.",
        ),
        T(
            "Okta Verify push arrives late",
            "Push notifications from Okta Verify take several minutes to arrive.",
        ),
        T(
            "Access request: {app}",
            "Please add me to the {app} group for the {team} team.",
        ),
    ),
}
_VDI_TEMPLATES = 5  # the first OTHER templates are the growing VDI theme
_VDI_SHARE = 0.8

_SN_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("inquiry", "internal application"),
    ("software", "os"),
    ("hardware", ""),
    ("inquiry", ""),
)


def render(template: Template, values: dict[str, str]) -> tuple[str, str]:
    """A template's summary and description with its slots filled."""
    return template.summary.format_map(values), template.description.format_map(values)


def _draw(intent: TicketIntent, rng: random.Random) -> tuple[str, str]:
    templates = TEMPLATES[intent.scenario]
    if intent.scenario is Scenario.OTHER:
        if rng.random() < _VDI_SHARE:
            template = templates[rng.randrange(_VDI_TEMPLATES)]
        else:
            template = templates[rng.randrange(_VDI_TEMPLATES, len(templates))]
    else:
        template = templates[rng.randrange(len(templates))]
    values = {name: options[rng.randrange(len(options))] for name, options in SLOTS.items()}
    return render(template, values)


def emit_ticket(intent: TicketIntent, rng: random.Random) -> dict[str, Any]:
    """The ticket as its helpdesk's REST API returns it (one record)."""
    summary, description = _draw(intent, rng)
    if intent.system == "servicenow":
        return _servicenow(intent, summary, description, rng)
    if intent.system == "jira":
        if rng.random() < JIRA_V3_SHARE:
            return _jira_v3(intent, summary, description, rng)
        return _jira_v2(intent, summary, description, rng)
    raise ValueError(f"unknown helpdesk system {intent.system!r}")


# --- ServiceNow -----------------------------------------------------------------------------


def _sn_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sn_ref(table: str, sys_id: str) -> dict[str, str]:
    return {"link": f"{SERVICENOW_INSTANCE}/api/now/table/{table}/{sys_id}", "value": sys_id}


def _servicenow(
    intent: TicketIntent, summary: str, description: str, rng: random.Random
) -> dict[str, Any]:
    person = intent.person
    opened = intent.time
    caller = person.uid
    category, subcategory = _SN_CATEGORIES[rng.randrange(len(_SN_CATEGORIES))]
    urgency = str(rng.choice((2, 3, 3)))
    priority = "3" if urgency == "2" else "4"
    created = opened + timedelta(seconds=rng.randint(1, 3))
    return {
        "upon_approval": "proceed",
        "location": "",
        "expected_start": "",
        "reopen_count": "0",
        "close_notes": "",
        "additional_assignee_list": "",
        "impact": "3",
        "urgency": urgency,
        "correlation_id": "",
        "sys_tags": "",
        "sys_domain": _sn_ref("sys_user_group", "global"),
        "description": description,
        "group_list": "",
        "priority": priority,
        "delivery_plan": "",
        "sys_mod_count": "0",
        "work_notes_list": "",
        "business_service": "",
        "follow_up": "",
        "closed_at": "",
        "sla_due": "",
        "delivery_task": "",
        "sys_updated_on": _sn_time(created),
        "parent": "",
        "work_end": "",
        "number": f"INC{intent.number:07d}",
        "closed_by": "",
        "work_start": "",
        "calendar_stc": "",
        "category": category,
        "business_duration": "",
        "incident_state": "1",
        "activity_due": "",
        "correlation_display": "",
        "company": "",
        "active": "true",
        "due_date": "",
        "assignment_group": _sn_ref("sys_user_group", "8a4dde73c6112278017a6a4baf547aa7"),
        "caller_id": _sn_ref("sys_user", caller),
        "knowledge": "false",
        "made_sla": "true",
        "comments_and_work_notes": "",
        "parent_incident": "",
        "state": "1",
        "user_input": "",
        "sys_created_on": _sn_time(created),
        "approval_set": "",
        "reassignment_count": "0",
        "rfc": "",
        "child_incidents": "0",
        "opened_at": _sn_time(opened),
        "short_description": summary,
        "order": "",
        "sys_updated_by": person.login.split("@", 1)[0],
        "resolved_by": "",
        "notify": "1",
        "upon_reject": "cancel",
        "approval_history": "",
        "problem_id": "",
        "work_notes": "",
        "calendar_duration": "",
        "close_code": "",
        "sys_id": intent.uid,
        "approval": "not requested",
        "caused_by": "",
        "severity": "3",
        "sys_created_by": person.login.split("@", 1)[0],
        "resolved_at": "",
        "assigned_to": "",
        "business_stc": "",
        "wf_activity": "",
        "sys_domain_path": "/",
        "cmdb_ci": "",
        "opened_by": _sn_ref("sys_user", caller),
        "subcategory": subcategory,
        "rejection_goto": "",
        "sys_class_name": "incident",
        "watch_list": "",
        "time_worked": "",
        "contact_type": rng.choice(("self-service", "self-service", "email", "phone")),
        "escalation": "0",
        "comments": "",
        "caller_id.email": person.login,
        "caller_id.user_name": person.login.split("@", 1)[0],
    }


# --- Jira -----------------------------------------------------------------------------------


def _jira_time(when: datetime) -> str:
    # `2026-01-26T09:15:02.123+0000`: milliseconds and an offset without a colon
    return (
        when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    )


def _adf(description: str) -> dict[str, Any]:
    """Paragraphs -> ADF paragraph nodes; line breaks inside one -> hardBreak nodes."""
    content = []
    for paragraph in description.split("\n\n"):
        inline: list[dict[str, Any]] = []
        for index, line in enumerate(paragraph.split("\n")):
            if index:
                inline.append({"type": "hardBreak"})
            inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def _status(site: str, api: int) -> dict[str, Any]:
    return {
        "self": f"{site}/rest/api/{api}/status/10001",
        "description": "",
        "iconUrl": f"{site}/images/icons/status_generic.gif",
        "name": "Waiting for support",
        "id": "10001",
        "statusCategory": {
            "self": f"{site}/rest/api/{api}/statuscategory/2",
            "id": 2,
            "key": "new",
            "colorName": "blue-gray",
            "name": "To Do",
        },
    }


def _project(site: str, api: int) -> dict[str, Any]:
    avatar = f"{site}/rest/api/{api}/universal_avatar/view/type/project/avatar/10411"
    return {
        "self": f"{site}/rest/api/{api}/project/10000",
        "id": "10000",
        "key": JIRA_PROJECT,
        "name": "IT Help Desk",
        "projectTypeKey": "service_desk",
        "simplified": False,
        "avatarUrls": {"48x48": avatar, "24x24": avatar, "16x16": avatar, "32x32": avatar},
    }


def _issuetype(site: str, api: int) -> dict[str, Any]:
    return {
        "self": f"{site}/rest/api/{api}/issuetype/10004",
        "id": "10004",
        "description": "For customer support issues. Created by Jira Service Management.",
        "iconUrl": f"{site}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10552",
        "name": "[System] Incident",
        "subtask": False,
        "hierarchyLevel": 0,
    }


def _jira_v3(
    intent: TicketIntent, summary: str, description: str, rng: random.Random
) -> dict[str, Any]:
    site = JIRA_CLOUD
    person = intent.person
    issue_id = str(10000 + intent.number)
    key = f"{JIRA_PROJECT}-{intent.number}"
    created = _jira_time(intent.time)
    account = person.uid[:24]
    avatar = f"https://secure.gravatar.com/avatar/{person.uid}?d=identicon"
    reporter = {
        "self": f"{site}/rest/api/3/user?accountId={account}",
        "accountId": account,
        "emailAddress": person.login,
        "avatarUrls": {"48x48": avatar, "24x24": avatar, "16x16": avatar, "32x32": avatar},
        "displayName": person.display_name,
        "active": True,
        "timeZone": "Etc/UTC",
        "accountType": "customer",
    }
    request_type = rng.choice(("Get IT help", "Report a sign-in problem"))
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
        "versionedRepresentations,customfield_10010.requestTypePractice",
        "id": issue_id,
        "self": f"{site}/rest/api/3/issue/{issue_id}",
        "key": key,
        "fields": {
            "statuscategorychangedate": created,
            "issuetype": _issuetype(site, 3),
            "timespent": None,
            "project": _project(site, 3),
            "fixVersions": [],
            "resolution": None,
            "customfield_10010": {
                "_links": {
                    "jiraRest": f"{site}/rest/api/2/issue/{issue_id}",
                    "web": f"{site}/servicedesk/customer/portal/1/{key}",
                    "agent": f"{site}/browse/{key}",
                    "self": f"{site}/rest/servicedeskapi/request/{issue_id}",
                },
                "requestType": {
                    "_expands": ["field"],
                    "id": "11" if request_type == "Get IT help" else "17",
                    "_links": {"self": f"{site}/rest/servicedeskapi/servicedesk/1/requesttype/11"},
                    "name": request_type,
                    "description": "Get assistance for general IT problems and questions.",
                    "helpText": "",
                    "issueTypeId": "10004",
                    "serviceDeskId": "1",
                    "portalId": "1",
                    "groupIds": ["1"],
                },
                "currentStatus": {
                    "status": "Waiting for support",
                    "statusCategory": "NEW",
                    "statusDate": {"jira": created},
                },
            },
            "resolutiondate": None,
            "created": created,
            "priority": {
                "self": f"{site}/rest/api/3/priority/3",
                "iconUrl": f"{site}/images/icons/priorities/medium.svg",
                "name": "Medium",
                "id": "3",
            },
            "labels": ["passwordless"] if rng.random() < 0.5 else [],
            "assignee": None,
            "updated": created,
            "status": _status(site, 3),
            "components": [],
            "description": _adf(description),
            "summary": summary,
            "creator": reporter,
            "subtasks": [],
            "reporter": reporter,
            "environment": None,
            "duedate": None,
        },
    }


def _jira_v2(
    intent: TicketIntent, summary: str, description: str, rng: random.Random
) -> dict[str, Any]:
    site = JIRA_DATA_CENTER
    person = intent.person
    issue_id = str(10000 + intent.number)
    created = _jira_time(intent.time)
    username = person.login.split("@", 1)[0]
    avatar = f"{site}/secure/useravatar?avatarId=10122"
    reporter = {
        "self": f"{site}/rest/api/2/user?username={username}",
        "name": username,
        "key": f"JIRAUSER{10000 + int(person.uid[:4], 16)}",
        "emailAddress": person.login,
        "avatarUrls": {"48x48": avatar, "24x24": avatar, "16x16": avatar, "32x32": avatar},
        "displayName": person.display_name,
        "active": True,
        "timeZone": "Etc/UTC",
    }
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
        "versionedRepresentations",
        "id": issue_id,
        "self": f"{site}/rest/api/2/issue/{issue_id}",
        "key": f"{JIRA_PROJECT}-{intent.number}",
        "fields": {
            "issuetype": _issuetype(site, 2),
            "timespent": None,
            "project": _project(site, 2),
            "created": created,
            "priority": {
                "self": f"{site}/rest/api/2/priority/3",
                "iconUrl": f"{site}/images/icons/priorities/medium.svg",
                "name": "Medium",
                "id": "3",
            },
            "labels": ["passwordless"] if rng.random() < 0.5 else [],
            "assignee": None,
            "updated": created,
            "status": _status(site, 2),
            "components": [],
            "description": description.replace("\n", "\r\n"),
            "summary": summary,
            "creator": reporter,
            "reporter": reporter,
            "environment": None,
            "duedate": None,
        },
    }
