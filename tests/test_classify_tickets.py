"""Ticket scenario rules: accuracy on phrasings people write, precedence, user rules files.

Every phrasing was written after the rules, in people's own words (typos, slang, two things
at once), and differs from the simulator's templates (pipeline/simulate/vendors/tickets.py).
How each set was used, honestly (accuracy when first run, before any change it prompted):
- round 1 (86): 88.4% -> closed vocabulary gaps (bare participles "phone stolen", theft by
  others, `yubi*` stems, a word between "temporary"/"legacy" and the noun);
- round 2 (79): 87.3% -> whole synonym families (theft/damage participles, kiosk plurals,
  several people sharing a device, nationality adjectives, "acquired" as a verb), then one
  review pass from the runbook side (discarding, flaky sensors, guest PCs, scams, phones
  without Google services, people joining from another company);
- round 3 (72, long and deliberately tricky): 81.9% -> design change: unambiguous loss or
  damage words only need to follow the object in the same sentence; theft events take any
  device in the sentence; generic phrases ("emergency access", "subsidiary") demoted;
- round 4 (79, long and tricky): 82.3% -> the missing families of round 4;
- HELD_OUT (66): real users' phrasings adapted from public Q&A / community posts plus typical
  short ticket subjects. Written after the last rule change; the rules were NOT changed
  after it was run (92.4% when written), except one change found by a parser fixture
  (`own` dropped from the personal-device hint: "on my own laptop it works" is a contrast),
  which left HELD_OUT at 92.4%. Expect lower on long, unusual prose (rounds 3-4).
Rounds 1-4 form DEV_SET, kept as a regression set. Both tests print their misses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.classify.tickets import (
    RULES_ENV_VAR,
    RulesError,
    TicketRules,
    classify_ticket,
    default_rules,
    load_rules,
    scenario_scores,
)
from pipeline.model import Scenario

S = Scenario

DEV_SET: list[tuple[str, Scenario]] = [
    # --- round 1 ---
    # lost primary device
    ("Phone got stolen on the tube this morning, can't approve sign-ins", S.LOST_DEVICE),
    (
        "I dropped my iPhone in the lake over the weekend and now I can't get into anything",
        S.LOST_DEVICE,
    ),
    ("new phone, old passkeys didn't come over. how do I log in?", S.LOST_DEVICE),
    ("My laptop was stolen from my car last night. Need access to email urgently.", S.LOST_DEVICE),
    ("Left my work phone at my mum's house 3 hours away, need to sign in today", S.LOST_DEVICE),
    ("macbook died completely (won't turn on) and the Touch ID passkey was on it", S.LOST_DEVICE),
    ("cant find my phone anywhere, think i lost it at the concert", S.LOST_DEVICE),
    (
        "My Pixel's screen is shattered and the touch doesn't respond so I can't approve",
        S.LOST_DEVICE,
    ),
    (
        "Company laptop got reimaged by IT yesterday and Windows Hello is gone, now it asks for a "
        "passkey I don't have",
        S.LOST_DEVICE,
    ),
    ("My phone was pickpocketed in Barcelona", S.LOST_DEVICE),
    ("Stollen phone - need to reset my MFA", S.LOST_DEVICE),
    # lost security key
    ("Lost my YubiKey, probably fell out of my pocket on the bus", S.LOST_SECURITY_KEY),
    ("my security key snapped in half in the car door lol", S.LOST_SECURITY_KEY),
    ("Yubikey went through the washing machine, it no longer lights up", S.LOST_SECURITY_KEY),
    (
        "forgot my yubi key at home, working from the office today, how do I get in?",
        S.LOST_SECURITY_KEY,
    ),
    ("I no longer have my Feitian key, it was in my bag that got stolen", S.LOST_SECURITY_KEY),
    ("Need a replacement security key, the old one is missing", S.LOST_SECURITY_KEY),
    ("yubikey lost during travel to Tokyo", S.LOST_SECURITY_KEY),
    (
        "Smart card got damaged, the chip is cracked and the reader won't read it",
        S.LOST_SECURITY_KEY,
    ),
    ("Someone took my key fob off my desk", S.LOST_SECURITY_KEY),
    (
        "My hardware key is gone, I think I left it plugged into the conference room PC",
        S.LOST_SECURITY_KEY,
    ),
    ("Lost my yubikeey somewhere at the airport", S.LOST_SECURITY_KEY),
    # biometric stopped working
    (
        "Touch ID doesn't recognise my fingerprint anymore after I cut my finger",
        S.BIOMETRIC_FAILURE,
    ),
    (
        "Windows Hello face recognition stopped working after the camera driver update",
        S.BIOMETRIC_FAILURE,
    ),
    ("Face ID fails every time since I started wearing glasses", S.BIOMETRIC_FAILURE),
    ("fingerprint reader on my Dell is broken, keeps saying try again", S.BIOMETRIC_FAILURE),
    (
        "The fingerprnt sensor won't read my thumb, skin is really dry in winter",
        S.BIOMETRIC_FAILURE,
    ),
    ("Biometric login keeps failing on my Surface", S.BIOMETRIC_FAILURE),
    (
        "hello, my face isn't being recognized by Windows Hello since i grew a beard",
        S.BIOMETRIC_FAILURE,
    ),
    ("Touch ID on the MacBook just says 'try again' over and over", S.BIOMETRIC_FAILURE),
    (
        "I burned my fingertips cooking and now the laptop won't accept my fingerprint",
        S.BIOMETRIC_FAILURE,
    ),
    # kiosk / temporary device
    ("Can't use Windows Hello on the shared front desk PC at reception", S.KIOSK_DEVICE),
    ("Working from a loaner laptop while mine is being repaired, no passkey on it", S.KIOSK_DEVICE),
    (
        "How do I sign in on the warehouse handheld scanners? they are shared between shifts",
        S.KIOSK_DEVICE,
    ),
    ("Nurses station computer is used by 12 people, passkey prompt wants a phone", S.KIOSK_DEVICE),
    ("I'm at a hotel business center and need to check email, no passkey here", S.KIOSK_DEVICE),
    ("borrowed my colleague's laptop for the day, what do I do about the passkey?", S.KIOSK_DEVICE),
    (
        "Temporary contractor workstation in the training room doesn't support platform passkeys",
        S.KIOSK_DEVICE,
    ),
    (
        "Need to log in from a public library computer while my laptop is in for repair",
        S.KIOSK_DEVICE,
    ),
    (
        "the kiosk in the break room asks for Windows Hello which obviously nobody has set up",
        S.KIOSK_DEVICE,
    ),
    ("We hot desk and the passkey is tied to whichever PC I used yesterday", S.KIOSK_DEVICE),
    # phishing-incident lockdown
    (
        "Locked out since the phishing incident on Monday, need emergency access for payroll",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "Security locked my account after I clicked a link in a fake DocuSign email",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "All our sessions got revoked after the breach, my passkey is now rejected",
        S.PHISHING_LOCKDOWN,
    ),
    ("I reported a phish yesterday and today I can't sign in to anything", S.PHISHING_LOCKDOWN),
    (
        "SOC disabled my account during the incident response, when can I get back in?",
        S.PHISHING_LOCKDOWN,
    ),
    ("our whole team got locked down after the credential theft last week", S.PHISHING_LOCKDOWN),
    (
        "account compromised? I got 30 MFA push requests at 3am and now I'm locked out",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "Need break-glass access, the tenant is in lockdown and the CFO has to approve payments",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "Was told my credentials were harvested by a fake Microsoft login page, "
        "IT reset everything",
        S.PHISHING_LOCKDOWN,
    ),
    # M&A integration
    (
        "We came over with the Contoso acquisition and my laptop is still joined to their Azure AD",
        S.MNA_INTEGRATION,
    ),
    (
        "Post-merger: my old company email can't register a passkey in the new Okta",
        S.MNA_INTEGRATION,
    ),
    (
        "I'm from the acquired team, our devices are enrolled in the other tenant's Intune",
        S.MNA_INTEGRATION,
    ),
    (
        "after the merger I have two accounts and neither lets me use Windows Hello",
        S.MNA_INTEGRATION,
    ),
    ("Legacy Fabrikam domain users can't enroll passkeys in our Entra tenant", S.MNA_INTEGRATION),
    (
        "Since we were bought by Northwind, my passkey registers against the wrong directory",
        S.MNA_INTEGRATION,
    ),
    (
        "My laptop belongs to the parent company's tenant, can't sign into subsidiary apps",
        S.MNA_INTEGRATION,
    ),
    (
        "Part of the divestiture, need to move my passkeys to the spun-off company",
        S.MNA_INTEGRATION,
    ),
    (
        "acquistion integration: our team still uses the old IdP and can't access your Okta",
        S.MNA_INTEGRATION,
    ),
    # unsupported country
    (
        "Working out of our Beijing office this month, the security key option just isn't there "
        "on the sign-in page",
        S.UNSUPPORTED_COUNTRY,
    ),
    (
        "Microsoft Authenticator is not available in the app store in my country",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("On a business trip to Russia and Okta Verify push never arrives", S.UNSUPPORTED_COUNTRY),
    ("My new Huawei phone has no Google services so I can't save a passkey", S.UNSUPPORTED_COUNTRY),
    (
        "Passkeys aren't supported in our region according to the error message",
        S.UNSUPPORTED_COUNTRY,
    ),
    (
        "relocated to Tehran for a project, the authenticator app can't be downloaded",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("Apple says iCloud Keychain passkey sync is unavailable in my region", S.UNSUPPORTED_COUNTRY),
    (
        "Traveling in mainland China, Google Password Manager passkeys don't show up",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("We have staff in Minsk and the enrollment site is geo-blocked", S.UNSUPPORTED_COUNTRY),
    # other: no runbook
    ("Printer on 4th floor keeps jamming", S.OTHER),
    ("Please add me to the Finance-Reporting distribution list", S.OTHER),
    ("Outlook keeps asking for my password every hour", S.OTHER),
    ("My passkey doesn't work inside the Citrix desktop, works fine locally", S.OTHER),
    ("Security key not detected when I'm connected to my Azure Virtual Desktop session", S.OTHER),
    ("Need a license for Adobe Acrobat Pro", S.OTHER),
    ("VPN disconnects whenever I switch Wi-Fi networks", S.OTHER),
    ("How do I register a second passkey as a backup?", S.OTHER),
    ("Teams camera shows a black screen", S.OTHER),
    ("Can you reset my Windows Hello PIN? I forgot it", S.OTHER),
    ("Excel crashes when opening large files", S.OTHER),
    ("WebAuthn prompt spins forever in the RDP session to the jump host", S.OTHER),
    # two things at once: the cause wins
    ("I'm travelling in Japan and lost my phone at the airport", S.LOST_DEVICE),
    ("Phone stolen, and now Face ID obviously can't help me", S.LOST_DEVICE),
    (
        "Since the phishing lockdown my YubiKey is rejected - is it revoked or broken?",
        S.PHISHING_LOCKDOWN,
    ),
    ("We were acquired last month and I also left my security key in a taxi", S.LOST_SECURITY_KEY),
    ("Using a borrowed PC at the Moscow office, passkey not offered", S.KIOSK_DEVICE),
    (
        "My fingerprint stopped working and then I dropped the laptop, now it won't boot",
        S.LOST_DEVICE,
    ),
    # --- round 2 ---
    # lost primary device
    ("Uber driver drove off with my phone still in the back seat", S.LOST_DEVICE),
    ("My Galaxy S23 was swiped from my table at a cafe", S.LOST_DEVICE),
    ("laptop bag stolen at the train station with my work laptop inside", S.LOST_DEVICE),
    ("I accidentally factory reset my phone and lost all my passkeys", S.LOST_DEVICE),
    ("Phone fell in the toilet and won't turn on now", S.LOST_DEVICE),
    ("Got a new Pixel 9 today, how do I move my sign-in to it?", S.LOST_DEVICE),
    ("My iPad got run over by a car", S.LOST_DEVICE),
    ("I left my laptop on the plane, airline is looking for it", S.LOST_DEVICE),
    ("Work mobile is missing since Friday's team drinks", S.LOST_DEVICE),
    ("my macbook screen went black and it won't boot, Touch ID is on that machine", S.LOST_DEVICE),
    # lost security key
    ("Dog chewed my YubiKey to pieces", S.LOST_SECURITY_KEY),
    ("Misplaced my security key during the office move", S.LOST_SECURITY_KEY),
    ("I lost both my YubiKeys, primary and backup", S.LOST_SECURITY_KEY),
    ("My Titan key was in my jacket which got stolen at the gym", S.LOST_SECURITY_KEY),
    ("can't find my FIDO key, need temporary access", S.LOST_SECURITY_KEY),
    ("Yubikey 5C bent after I sat on it, USB-C plug is broken", S.LOST_SECURITY_KEY),
    ("key fob lost on holiday", S.LOST_SECURITY_KEY),
    ("My smartcard is broken and the PIV reader says no certificate", S.LOST_SECURITY_KEY),
    ("left the usb key in my home PC, im at the office", S.LOST_SECURITY_KEY),
    # biometric stopped working
    ("Windows Hello can't see my face when I'm wearing my hijab", S.BIOMETRIC_FAILURE),
    ("Touch ID greyed out on my MacBook Pro after macOS update", S.BIOMETRIC_FAILURE),
    (
        "Fingerprint not recognised since I started working in the lab with gloves",
        S.BIOMETRIC_FAILURE,
    ),
    ("face unlock on laptop stopped recognizing me after I got new glasses", S.BIOMETRIC_FAILURE),
    ("biometrics disabled on my device by policy?? can't use them", S.BIOMETRIC_FAILURE),
    ("my thumb print reader doesnt read anymore", S.BIOMETRIC_FAILURE),
    ("the IR camera for Hello face doesn't turn on", S.BIOMETRIC_FAILURE),
    ("Face ID says 'Face Not Recognized' every time I approve a sign-in", S.BIOMETRIC_FAILURE),
    ("Since my hand surgery my fingerprints don't register", S.BIOMETRIC_FAILURE),
    # kiosk / temporary device
    ("Factory floor terminal is shared by the whole shift, no way to use passkeys", S.KIOSK_DEVICE),
    ("Using a spare laptop from IT while waiting for my new one", S.KIOSK_DEVICE),
    (
        "On a colleague's PC in the meeting room, can I sign in without my Hello PIN?",
        S.KIOSK_DEVICE,
    ),
    ("Internet cafe computer in the airport, need my email urgently", S.KIOSK_DEVICE),
    ("Our retail POS terminals ask for Windows Hello, staff rotate every shift", S.KIOSK_DEVICE),
    ("Logging in from my home computer because my work laptop is at the office", S.KIOSK_DEVICE),
    ("Hotdesking this week and every desk PC asks me to set up a passkey again", S.KIOSK_DEVICE),
    ("The lab's shared workstation won't let me add a passkey", S.KIOSK_DEVICE),
    ("Receptionist PC used by three people, can Windows Hello handle that?", S.KIOSK_DEVICE),
    # phishing-incident lockdown
    ("My account was hacked last night, IT locked it, I need to work", S.PHISHING_LOCKDOWN),
    (
        "After Tuesday's spear-phishing campaign all passkeys were revoked company-wide",
        S.PHISHING_LOCKDOWN,
    ),
    ("I entered my credentials on a fake Okta page, now I'm locked out", S.PHISHING_LOCKDOWN),
    ("cyber attack lockdown - need emergency login for the trading desk", S.PHISHING_LOCKDOWN),
    (
        "Security team suspended my access while they investigate the phishing email I opened",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "We're in a tenant-wide freeze after the ransomware incident, how do execs get in?",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "I think someone got my password through a smishing text and now my sign-ins are blocked",
        S.PHISHING_LOCKDOWN,
    ),
    ("incident response reset all our sessions, my passkey is not accepted", S.PHISHING_LOCKDOWN),
    ("Got a suspicious login alert and now my account is disabled", S.PHISHING_LOCKDOWN),
    # M&A integration
    ("New hire from the Globex merger, my laptop is on the Globex domain", S.MNA_INTEGRATION),
    (
        "our division was spun off and our accounts need to leave the parent tenant",
        S.MNA_INTEGRATION,
    ),
    (
        "I work for the company you acquired in March, can't register a security key",
        S.MNA_INTEGRATION,
    ),
    ("Cross-tenant sync hasn't moved my account, passkey registration fails", S.MNA_INTEGRATION),
    (
        "Still using my old Initech email and Entra keeps sending me to their sign-in page",
        S.MNA_INTEGRATION,
    ),
    ("Since the takeover by Umbrella Corp my Windows Hello stopped working", S.MNA_INTEGRATION),
    ("M&A: the acquired company's Okta is federated to ours and passkeys fail", S.MNA_INTEGRATION),
    (
        "Integration project: devices from the old company are still in their Intune",
        S.MNA_INTEGRATION,
    ),
    ("merging our two IdPs - where do I enroll my passkey now?", S.MNA_INTEGRATION),
    # unsupported country
    ("In Moscow on assignment, passkey sign-in says not supported", S.UNSUPPORTED_COUNTRY),
    ("Okta Verify is not offered in the Chinese App Store", S.UNSUPPORTED_COUNTRY),
    ("Working from Havana and Microsoft Authenticator can't be installed", S.UNSUPPORTED_COUNTRY),
    ("Is iCloud Keychain blocked in Iran? my passkeys won't sync", S.UNSUPPORTED_COUNTRY),
    ("the passkey option doesn't show up while I'm in Shenzhen", S.UNSUPPORTED_COUNTRY),
    (
        "Our Xiaomi phones in China lack Google Play services, how do we get passkeys?",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("sanctions mean the Authenticator app isn't in our local store", S.UNSUPPORTED_COUNTRY),
    ("Visiting family in Syria and cannot reach the sign-in page", S.UNSUPPORTED_COUNTRY),
    ("Region restrictions on the passkey provider in my country", S.UNSUPPORTED_COUNTRY),
    # other: no runbook
    ("Monitor flickers on my docking station", S.OTHER),
    ("Passkey prompt doesn't appear when I RDP into the build server", S.OTHER),
    ("Citrix Workspace says no authenticator found", S.OTHER),
    ("Requesting admin rights to install Python", S.OTHER),
    ("Password expired notification but I use passkeys, can I ignore it?", S.OTHER),
    ("Security key works locally but not inside VMware Horizon", S.OTHER),
    ("Zoom audio echo in conference calls", S.OTHER),
    ("How do I add my YubiKey as a second factor?", S.OTHER),
    ("MFA prompt shows wrong app name", S.OTHER),
    ("Shared mailbox permissions for the HR inbox", S.OTHER),
    # two things at once
    ("Lost my phone in Beijing airport and the backup YubiKey is at home", S.LOST_DEVICE),
    (
        "After the acquisition I got a new laptop and Windows Hello face won't enroll",
        S.MNA_INTEGRATION,
    ),
    ("phishing test email made me click, now the SOC locked my account", S.PHISHING_LOCKDOWN),
    ("I'm on a loaner because my MacBook was stolen", S.LOST_DEVICE),
    ("traveling in China, also my fingerprint reader is dead", S.BIOMETRIC_FAILURE),
    # --- round 3 ---
    # lost primary device
    ("Lost my cell at the stadium last night, can't do the Okta push or passkey", S.LOST_DEVICE),
    ("Someone broke into my car and took my work laptop", S.LOST_DEVICE),
    ("My son dropped my phone in the bath, it's completely dead", S.LOST_DEVICE),
    (
        "Laptop got left behind in a meeting room at the client site and now it's gone",
        S.LOST_DEVICE,
    ),
    (
        "I gave my old phone to my daughter and reset it, forgot the passkey was on there",
        S.LOST_DEVICE,
    ),
    ("iPhone screen smashed, can't even unlock it", S.LOST_DEVICE),
    ("my laptop's been stolen from my flat during a burglary", S.LOST_DEVICE),
    ("Work phone confiscated by airport security in transit", S.LOST_DEVICE),
    ("switched to a Samsung from an iPhone and my passkeys didn't transfer", S.LOST_DEVICE),
    # lost security key
    ("I've lost the little black YubiKey that was on my lanyard", S.LOST_SECURITY_KEY),
    ("Need emergency access, my security key fell down a drain", S.LOST_SECURITY_KEY),
    ("yubikey got crushed in my bag", S.LOST_SECURITY_KEY),
    ("Can't locate my FIDO2 token anywhere at home", S.LOST_SECURITY_KEY),
    ("My smart card was stolen along with my wallet", S.LOST_SECURITY_KEY),
    (
        "The USB security key was in my car which got towed and I can't get it back until Monday",
        S.LOST_SECURITY_KEY,
    ),
    ("yubi went missing after the offsite", S.LOST_SECURITY_KEY),
    ("security key plug snapped off, only the top half is left", S.LOST_SECURITY_KEY),
    # biometric stopped working
    ("Windows Hello says it couldn't recognise my face, tried 10 times", S.BIOMETRIC_FAILURE),
    ("Touch ID not responding on the Mac since the keyboard was replaced", S.BIOMETRIC_FAILURE),
    ("Fingerprint login on my HP EliteBook is flaky, works 1 in 5 times", S.BIOMETRIC_FAILURE),
    ("Face ID won't work with my work safety goggles on", S.BIOMETRIC_FAILURE),
    (
        "My fingerprints got worn down from gardening and the sensor rejects them",
        S.BIOMETRIC_FAILURE,
    ),
    ("Since the BIOS update the fingerprint scanner isn't detected", S.BIOMETRIC_FAILURE),
    (
        "facial recognition on my Surface no longer sees me in the morning light",
        S.BIOMETRIC_FAILURE,
    ),
    (
        "Biometrics on my laptop were turned off by an update and the option is greyed out",
        S.BIOMETRIC_FAILURE,
    ),
    # kiosk / temporary device
    ("Warehouse pickers share three tablets, how do they sign in with passkeys?", S.KIOSK_DEVICE),
    ("the reception iPad for visitor sign-in keeps asking for Windows Hello", S.KIOSK_DEVICE),
    ("Using the guest computer in the lobby while my laptop is being set up", S.KIOSK_DEVICE),
    ("My temporary workstation doesn't have a fingerprint reader or camera", S.KIOSK_DEVICE),
    ("Shift workers in the lab all use the same login PC", S.KIOSK_DEVICE),
    ("Can I use passkeys on a loan laptop from IT?", S.KIOSK_DEVICE),
    ("the training room machines are wiped every night so Hello never sticks", S.KIOSK_DEVICE),
    ("Call centre agents hot-desk, and the PCs aren't theirs", S.KIOSK_DEVICE),
    # phishing-incident lockdown
    ("Our security team put all accounts in lockdown after a phishing wave", S.PHISHING_LOCKDOWN),
    (
        "someone impersonated IT on Teams and got my code, now my account is frozen",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "I'm locked out and was told it's because of the compromised vendor account incident",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "Break glass procedure needed for the on-call engineer during the breach",
        S.PHISHING_LOCKDOWN,
    ),
    (
        "All MFA devices were wiped for my team after the attack, need to re-enroll",
        S.PHISHING_LOCKDOWN,
    ),
    ("Got phished last week and my passkeys were revoked", S.PHISHING_LOCKDOWN),
    ("Account suspended by SOC pending investigation", S.PHISHING_LOCKDOWN),
    ("After the credential leak, everyone's sessions were killed", S.PHISHING_LOCKDOWN),
    # M&A integration
    (
        "I'm one of the Contoso people who moved over in the merger; "
        "Windows Hello enrollment fails",
        S.MNA_INTEGRATION,
    ),
    (
        "Still have my @litware.com address since the acquisition, can't add a passkey",
        S.MNA_INTEGRATION,
    ),
    ("My laptop is managed by the old company's Intune and won't join ours", S.MNA_INTEGRATION),
    (
        "Tenant-to-tenant migration left my Authenticator pointing at the wrong org",
        S.MNA_INTEGRATION,
    ),
    ("we got bought out and our SSO is still on our old Okta", S.MNA_INTEGRATION),
    ("Divested business unit needs passkeys moved to the new entity", S.MNA_INTEGRATION),
    (
        "As part of day one integration my account was created but my device isn't enrolled",
        S.MNA_INTEGRATION,
    ),
    ("Our sister company's users need guest access with passkeys", S.MNA_INTEGRATION),
    # unsupported country
    (
        "Security key sign-in isn't supported for users in our Moscow subsidiary",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("The Authenticator app can't be found on the app store in Iran", S.UNSUPPORTED_COUNTRY),
    (
        "Working from Venezuela for a month and the passkey popup never comes up",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("Our Shanghai team can't use Google Password Manager at all", S.UNSUPPORTED_COUNTRY),
    (
        "Is there a workaround for passkeys being blocked by the Great Firewall?",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("Passkey sync is not available in my region, per Apple's error", S.UNSUPPORTED_COUNTRY),
    ("trip to Belarus next week - will Okta FastPass work there?", S.UNSUPPORTED_COUNTRY),
    ("HarmonyOS phone, no way to install Microsoft Authenticator", S.UNSUPPORTED_COUNTRY),
    # other: no runbook
    ("Keyboard missing the letter E key", S.OTHER),
    ("Can you unlock my AD account? typed my password wrong too many times", S.OTHER),
    ("Passkey prompt never appears inside the Citrix published browser", S.OTHER),
    ("Jira board permissions for the marketing team", S.OTHER),
    ("My Okta Verify push notifications are delayed by several minutes", S.OTHER),
    ("Windows Hello works on my laptop but not when I remote into my desktop via AVD", S.OTHER),
    ("Requesting a second monitor", S.OTHER),
    ("Teams status stuck on away", S.OTHER),
    ("The Wi-Fi in building 2 drops every afternoon", S.OTHER),
    ("How do I change my display name in Outlook?", S.OTHER),
    # two things at once
    ("Traveling in Russia and my laptop was stolen from the hotel", S.LOST_DEVICE),
    ("Lost my phone, now using a borrowed one from a coworker", S.LOST_DEVICE),
    ("Since the phishing incident my fingerprint login is disabled too", S.PHISHING_LOCKDOWN),
    ("My YubiKey is lost and my phone is broken", S.LOST_SECURITY_KEY),
    ("Windows Hello face stopped working on my new laptop", S.BIOMETRIC_FAILURE),
    # --- round 4 ---
    # lost primary device
    (
        "Phone slipped out of my pocket on the ferry, "
        "pretty sure it's at the bottom of the harbour",
        S.LOST_DEVICE,
    ),
    ("I can't sign in because my laptop was stolen at the conference in Lisbon", S.LOST_DEVICE),
    ("Handset lost - please disable it and give me a temporary access pass", S.LOST_DEVICE),
    ("Kid knocked my iPad off the balcony. It's in pieces", S.LOST_DEVICE),
    ("My work laptop has been sent off to Dell for a motherboard replacement", S.LOST_DEVICE),
    ("Phone's battery swelled up and it won't power on anymore", S.LOST_DEVICE),
    ("Left my Android on the train this morning, lost property has nothing", S.LOST_DEVICE),
    ("Burglars took all the electronics including my company MacBook", S.LOST_DEVICE),
    ("Got a replacement handset from the carrier after mine was damaged", S.LOST_DEVICE),
    ("my phone is at home and I'm at the airport, how do I approve logins?", S.LOST_DEVICE),
    # lost security key
    ("I've misplaced my YubiKey and have a deadline today", S.LOST_SECURITY_KEY),
    (
        "My security key broke inside the USB port and I had to pull it out with pliers",
        S.LOST_SECURITY_KEY,
    ),
    ("Lost the Feitian ePass we were issued last month", S.LOST_SECURITY_KEY),
    ("The yubikey on my keychain got run over in the car park", S.LOST_SECURITY_KEY),
    ("I can't find my hardware token since moving desks", S.LOST_SECURITY_KEY),
    ("My son put my security key through the wash", S.LOST_SECURITY_KEY),
    ("Need a new YubiKey, my old one is cracked and won't register taps", S.LOST_SECURITY_KEY),
    ("left my smartcard in the reader at the other office", S.LOST_SECURITY_KEY),
    ("Security key stolen with my backpack at the gym", S.LOST_SECURITY_KEY),
    # biometric stopped working
    (
        "The fingerprint sensor on my keyboard registers nothing since yesterday",
        S.BIOMETRIC_FAILURE,
    ),
    (
        "Windows Hello face sign-in doesn't work with the new external monitor camera",
        S.BIOMETRIC_FAILURE,
    ),
    ("Touch ID only works on one finger now, the others are rejected", S.BIOMETRIC_FAILURE),
    ("Face ID has been failing since I had my nose broken", S.BIOMETRIC_FAILURE),
    ("Can't get Windows Hello to recognize my face in bright sunlight", S.BIOMETRIC_FAILURE),
    (
        "Fingerprint reader greyed out in Settings after the Intune policy change",
        S.BIOMETRIC_FAILURE,
    ),
    ("after the accident my thumb has a scar and the reader won't accept it", S.BIOMETRIC_FAILURE),
    ("Biometric unlock broken on my Lenovo after a firmware update", S.BIOMETRIC_FAILURE),
    ("Face recognition doesn't see me when I wear my reading glasses", S.BIOMETRIC_FAILURE),
    # kiosk / temporary device
    ("Our front-of-house staff use one iPad between them, passkeys don't fit this", S.KIOSK_DEVICE),
    ("Trying to sign in on the library's public PC at my university", S.KIOSK_DEVICE),
    ("The shop floor terminal is used by whoever is on shift", S.KIOSK_DEVICE),
    ("My replacement laptop is a temporary one from the pool until mine is fixed", S.KIOSK_DEVICE),
    ("Checking email from a hotel lobby computer, no passkey available", S.KIOSK_DEVICE),
    ("Contractors use shared Chromebooks in the project room", S.KIOSK_DEVICE),
    ("Is there a passkey option for the kiosk PCs in the canteen?", S.KIOSK_DEVICE),
    ("Logging in at a colleague's desk while mine is being moved", S.KIOSK_DEVICE),
    ("We rotate three laptops among the night shift nurses", S.KIOSK_DEVICE),
    # phishing-incident lockdown
    (
        "Password reset forced for everyone after the phishing attempt this morning",
        S.PHISHING_LOCKDOWN,
    ),
    ("My account got locked by security after an impossible-travel alert", S.PHISHING_LOCKDOWN),
    (
        "Need emergency access: the company is in lockdown after the Okta breach",
        S.PHISHING_LOCKDOWN,
    ),
    ("IT says my credentials were leaked and disabled my account", S.PHISHING_LOCKDOWN),
    (
        "We were hit by a phishing kit that stole MFA tokens, all sessions revoked",
        S.PHISHING_LOCKDOWN,
    ),
    ("Clicked on the fake invoice link and now I'm locked out of everything", S.PHISHING_LOCKDOWN),
    ("Security incident ongoing - who approves emergency sign-in for execs?", S.PHISHING_LOCKDOWN),
    (
        "SOC team revoked all my passkeys after a suspicious sign-in from Brazil",
        S.PHISHING_LOCKDOWN,
    ),
    ("Our whole department was locked out after the malware outbreak", S.PHISHING_LOCKDOWN),
    # M&A integration
    (
        "Joined via the Northwind acquisition and my device is still managed by Northwind IT",
        S.MNA_INTEGRATION,
    ),
    (
        "Merger integration: can't use my passkey with the combined company's apps",
        S.MNA_INTEGRATION,
    ),
    (
        "My email moved to the new domain but my passkey is still tied to the old one",
        S.MNA_INTEGRATION,
    ),
    ("As an ex-Contoso employee I still sign in through their Entra tenant", S.MNA_INTEGRATION),
    (
        "Since the companies merged, Windows Hello keeps picking the wrong account",
        S.MNA_INTEGRATION,
    ),
    ("After being acquired our Okta org has to be federated with yours", S.MNA_INTEGRATION),
    ("Former Fabrikam staff cannot register passkeys in the new tenant", S.MNA_INTEGRATION),
    ("The acquired firm's laptops are joined to a different Azure AD", S.MNA_INTEGRATION),
    ("Cross-org passkey registration fails for our newly merged team", S.MNA_INTEGRATION),
    # unsupported country
    ("Our staff in Tehran can't access the passkey enrollment page", S.UNSUPPORTED_COUNTRY),
    (
        "Google Play isn't available on my phone in China, so no Google Password Manager",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("In St Petersburg for work and the Authenticator push doesn't arrive", S.UNSUPPORTED_COUNTRY),
    ("The passkey feature is disabled for our region per the admin console", S.UNSUPPORTED_COUNTRY),
    ("Travelling around China - none of the sign-in prompts load", S.UNSUPPORTED_COUNTRY),
    ("Can't download Okta Verify from the Russian App Store", S.UNSUPPORTED_COUNTRY),
    (
        "Is Windows Hello for Business supported in Cuba? It never offers me a passkey",
        S.UNSUPPORTED_COUNTRY,
    ),
    ("Geo-restrictions are blocking my passkey login from Caracas", S.UNSUPPORTED_COUNTRY),
    ("Huawei P60 without Google, how do I use passkeys?", S.UNSUPPORTED_COUNTRY),
    # other: no runbook
    ("I'd like to book a meeting room display", S.OTHER),
    ("Passkeys are not working when I connect through Amazon WorkSpaces", S.OTHER),
    ("The Okta sign-in page is in the wrong language", S.OTHER),
    ("Need to update my cost center in Workday", S.OTHER),
    ("Security key PIN reset - I forgot the PIN", S.OTHER),
    ("Laptop is slow after the latest Windows update", S.OTHER),
    ("Please unblock a website for research", S.OTHER),
    ("Windows Hello prompt loops inside the Horizon virtual desktop", S.OTHER),
    ("Can't open attachments in Outlook on the web", S.OTHER),
    ("My phone number changed, please update it in my profile", S.OTHER),
    # two things at once
    ("Lost my phone in Moscow, and the Authenticator is blocked there anyway", S.LOST_DEVICE),
    ("My laptop was stolen, I'm on a spare from IT now", S.LOST_DEVICE),
    ("We were acquired and then my YubiKey broke", S.LOST_SECURITY_KEY),
    ("After the phishing incident my new phone can't be registered", S.PHISHING_LOCKDOWN),
    ("Shared kiosk in the Shanghai office doesn't show passkeys", S.KIOSK_DEVICE),
]


HELD_OUT: list[tuple[str, Scenario]] = [
    # adapted from real users' posts (Microsoft Q&A, Okta community, troubleshooting threads)
    ("Device lost, it had my authentication codes, cannot log in", S.LOST_DEVICE),
    (
        "I recently got a new phone and need to set up Okta Verify again but it wants Okta Verify "
        "to verify me",
        S.LOST_DEVICE,
    ),
    ("We just upgraded our corporate phones and now nobody can approve sign-ins", S.LOST_DEVICE),
    ("I accidentally deleted the authenticator app from my Android", S.OTHER),
    ("Hello doesn't recognize me since I got new glasses and grew a beard", S.BIOMETRIC_FAILURE),
    (
        "Keep getting 'Couldn't recognize you' from Windows Hello in the dim office",
        S.BIOMETRIC_FAILURE,
    ),
    ("Cannot use my enrolled finger because of an injury", S.BIOMETRIC_FAILURE),
    ("What happens now that I've lost my YubiKey?", S.LOST_SECURITY_KEY),
    ("My YubiKey is lost or stolen, please disable it", S.LOST_SECURITY_KEY),
    ("Presenters get blocked by MFA prompts on the meeting-room PC", S.KIOSK_DEVICE),
    (
        "People keep leaving their accounts signed in on the shared meeting room device",
        S.KIOSK_DEVICE,
    ),
    ("Created a passkey on my iPhone but it's nowhere when I open my Windows laptop", S.OTHER),
    ("How do I get my first passkey as a new employee without a password?", S.OTHER),
    ("The B2B guest from our partner can't meet the phishing-resistant MFA requirement", S.OTHER),
    ("Windows Hello face and PIN gone after Reset this PC with Keep my files", S.LOST_DEVICE),
    ("The IR camera never activates for face sign-in", S.BIOMETRIC_FAILURE),
    ("Hello says 'Something happened and your PIN isn't available'", S.OTHER),
    # typical ticket subjects
    ("lost my phone yesterday, need to get into Outlook", S.LOST_DEVICE),
    ("My phone was stolen. Please help me sign in.", S.LOST_DEVICE),
    ("Cracked my phone screen and it's not responding to touch", S.LOST_DEVICE),
    ("I'm getting a new laptop from IT next week, the old one is broken", S.LOST_DEVICE),
    ("My phone died and I don't have a charger with me", S.LOST_DEVICE),
    ("Forgot my phone at home today", S.LOST_DEVICE),
    ("I lost my security key", S.LOST_SECURITY_KEY),
    ("My YubiKey isn't in my bag, I think I lost it on the train", S.LOST_SECURITY_KEY),
    ("YubiKey physically damaged, the contacts are bent", S.LOST_SECURITY_KEY),
    ("Left my security key at home", S.LOST_SECURITY_KEY),
    ("Need a replacement smart card, mine cracked", S.LOST_SECURITY_KEY),
    ("Fingerprint not working on laptop", S.BIOMETRIC_FAILURE),
    ("Face ID won't recognize me with a mask", S.BIOMETRIC_FAILURE),
    ("Touch ID stopped working after the macOS update", S.BIOMETRIC_FAILURE),
    ("Windows Hello fingerprint setup fails with an error", S.BIOMETRIC_FAILURE),
    ("Fingerprint reader not detected in device manager", S.BIOMETRIC_FAILURE),
    ("How do I sign in on a shared PC?", S.KIOSK_DEVICE),
    (
        "I use a different desk every day and Windows Hello has to be set up each time",
        S.KIOSK_DEVICE,
    ),
    ("Our store iPad is used by all the staff", S.KIOSK_DEVICE),
    ("Logging in from a kiosk in the factory", S.KIOSK_DEVICE),
    ("I'm using a loaner while mine is in repair", S.KIOSK_DEVICE),
    ("Can I sign in from an internet cafe?", S.KIOSK_DEVICE),
    ("I clicked a phishing link, what should I do? My account is now locked", S.PHISHING_LOCKDOWN),
    ("Account locked by security team after suspicious activity", S.PHISHING_LOCKDOWN),
    ("Locked out because of the security incident", S.PHISHING_LOCKDOWN),
    ("We're in lockdown after the phishing attack, I need access for payroll", S.PHISHING_LOCKDOWN),
    ("My account was compromised and disabled", S.PHISHING_LOCKDOWN),
    ("After the breach all our passkeys were reset", S.PHISHING_LOCKDOWN),
    ("I joined through the acquisition and can't sign in to your apps", S.MNA_INTEGRATION),
    ("Our company merged with yours, how do I get a passkey?", S.MNA_INTEGRATION),
    ("My laptop is still in the old company's domain", S.MNA_INTEGRATION),
    ("Acquired employee, cannot enroll Windows Hello", S.MNA_INTEGRATION),
    ("Which tenant should I use after the merger?", S.MNA_INTEGRATION),
    ("Passkeys don't work in China", S.UNSUPPORTED_COUNTRY),
    ("The Microsoft Authenticator app is not available in my country", S.UNSUPPORTED_COUNTRY),
    ("I'm travelling in Russia and can't sign in with my passkey", S.UNSUPPORTED_COUNTRY),
    ("Google services not available on my phone in China", S.UNSUPPORTED_COUNTRY),
    ("Working from Iran temporarily, sign-in blocked", S.UNSUPPORTED_COUNTRY),
    ("Passkey option missing while abroad in Beijing", S.UNSUPPORTED_COUNTRY),
    ("Reset my password please", S.OTHER),
    ("My Okta Verify push isn't arriving", S.OTHER),
    ("Need VPN access", S.OTHER),
    ("Passkey not working in Citrix", S.OTHER),
    ("Can't sign in to Salesforce", S.OTHER),
    ("Laptop is running very slow", S.OTHER),
    ("Outlook not syncing", S.OTHER),
    ("Windows Hello PIN forgotten", S.OTHER),
    ("Lost my YubiKey in Shanghai", S.LOST_SECURITY_KEY),
    ("My laptop was stolen and now I'm using a shared PC", S.LOST_DEVICE),
]


@pytest.fixture(scope="module")
def rules() -> TicketRules:
    return load_rules()


def _accuracy(name: str, phrasings: list[tuple[str, Scenario]], rules: TicketRules) -> float:
    misses = [
        (text, expected.value, classify_ticket(text, rules).value)
        for text, expected in phrasings
        if classify_ticket(text, rules) is not expected
    ]
    accuracy = 1 - len(misses) / len(phrasings)
    print(f"\n{name} accuracy: {accuracy:.1%} ({len(phrasings) - len(misses)}/{len(phrasings)})")
    for text, expected, got in misses:
        print(f"  MISS expected {expected:<20} got {got:<20} {text!r}")
    return accuracy


def test_held_out_accuracy(rules: TicketRules) -> None:
    assert len(HELD_OUT) >= 60
    assert _accuracy("held-out", HELD_OUT, rules) >= 0.90


def test_dev_set_accuracy(rules: TicketRules) -> None:
    assert _accuracy("dev set", DEV_SET, rules) >= 0.90


@pytest.mark.parametrize("phrasings", [HELD_OUT, DEV_SET], ids=["held_out", "dev_set"])
def test_every_scenario_is_covered(phrasings: list[tuple[str, Scenario]]) -> None:
    assert {expected for _, expected in phrasings} == set(Scenario)


# --- precedence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "also_matched"),
    [
        # a lockdown is triaged first, even when a key is mentioned
        (
            "After the phishing incident my YubiKey was stolen",
            S.PHISHING_LOCKDOWN,
            S.LOST_SECURITY_KEY,
        ),
        # a lost key beats the background of an acquisition
        ("Since the acquisition I lost my security key", S.LOST_SECURITY_KEY, S.MNA_INTEGRATION),
        # a stolen phone (decisive) beats a biometric complaint (clear)
        ("My phone was stolen so Face ID no longer works", S.LOST_DEVICE, S.BIOMETRIC_FAILURE),
        # equal weight: the sensor failing beats "screen cracked" (listed first)
        (
            "Screen on my phone is cracked and the fingerprint sensor is not reading",
            S.BIOMETRIC_FAILURE,
            S.LOST_DEVICE,
        ),
        # equal weight: a shared PC beats its fingerprint reader failing
        (
            "The fingerprint reader on the shared reception PC is broken",
            S.KIOSK_DEVICE,
            S.BIOMETRIC_FAILURE,
        ),
        # a country named in passing does not beat a lost device
        ("In Beijing this week and my laptop was stolen", S.LOST_DEVICE, S.UNSUPPORTED_COUNTRY),
    ],
)
def test_precedence(
    rules: TicketRules, text: str, expected: Scenario, also_matched: Scenario
) -> None:
    scores = scenario_scores(text, rules)
    assert also_matched in scores, scores  # the loser did match: precedence decided it
    assert classify_ticket(text, rules) is expected


def test_words_that_only_look_like_a_scenario(rules: TicketRules) -> None:
    for text in (
        "We need phishing-resistant MFA on the VPN",  # not a phishing incident
        "I lost access to the shared mailbox",  # "lost access" is not a lost object
        "Please merge my two calendars",
        "Reset my password on my phone please",  # a password reset, not a wiped phone
        "The drop-down on my laptop is empty",
    ):
        assert classify_ticket(text, rules) is S.OTHER, (text, scenario_scores(text, rules))


def test_typographic_apostrophes_match(rules: TicketRules) -> None:
    assert classify_ticket("I can\u2019t find my phone", rules) is S.LOST_DEVICE


# --- user rules files ------------------------------------------------------------------------

_USER_RULES = """\
version: 1
terms:
  badge: '(?:badge|access card)'
scenarios:
  lost_security_key:
    signals:
      - {weight: 2, near: ['lost|left', '{badge}'], gap: 2, ordered: true}
  kiosk_device:
    description: our factory terminals
    signals:
      - {weight: 2, any: ['line terminal']}
      - {weight: 2, any: ['andon']}
"""


def test_user_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(_USER_RULES, encoding="utf-8")
    rules = load_rules(path)
    assert [r.scenario for r in rules.scenarios] == [S.LOST_SECURITY_KEY, S.KIOSK_DEVICE]
    assert rules.origin == str(path)
    assert classify_ticket("I left my badge at home", rules) is S.LOST_SECURITY_KEY
    # a space in a pattern is a word separator
    assert classify_ticket("Can't sign in on the line-terminal 4", rules) is S.KIOSK_DEVICE
    # only the user's scenarios exist now
    assert classify_ticket("my phone was stolen", rules) is S.OTHER


def test_user_rules_equal_weight_goes_to_the_first_listed(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nscenarios:\n"
        "  kiosk_device: {signals: [{any: ['terminal']}]}\n"
        "  lost_device: {signals: [{any: ['terminal']}]}\n",
        encoding="utf-8",
    )
    assert classify_ticket("terminal", load_rules(path)) is S.KIOSK_DEVICE


def test_env_var_points_default_rules_at_a_user_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(_USER_RULES, encoding="utf-8")
    monkeypatch.setenv(RULES_ENV_VAR, str(path))
    default_rules.cache_clear()
    assert default_rules().origin == str(path)
    monkeypatch.delenv(RULES_ENV_VAR)
    default_rules.cache_clear()
    assert default_rules().origin.startswith("packaged")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("version: 1\nscenarios: [\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("version: 2\nscenarios: {lost_device: {signals: [{any: [x]}]}}\n", "unsupported"),
        ("version: 1\nscenarios: {}\n", "non-empty mapping"),
        ("version: 1\nscenarios: {lost_dog: {signals: [{any: [x]}]}}\n", "unknown scenario"),
        ("version: 1\nscenarios: {other: {signals: [{any: [x]}]}}\n", "fallback"),
        (
            "version: 1\nscenarios: {lost_device: {signals: [{any: ['(unclosed']}]}}\n",
            "invalid regex",
        ),
        ("version: 1\nscenarios: {lost_device: {signals: [{any: ['{nope}']}]}}\n", "unknown term"),
        (
            "version: 1\nscenarios: {lost_device: {signals: [{any: [x], near: [a, b]}]}}\n",
            "exactly one of",
        ),
        ("version: 1\nscenarios: {lost_device: {signals: [{near: [a]}]}}\n", "exactly two"),
        ("version: 1\nscenarios: {lost_device: {signals: [{any: [x], weight: 0}]}}\n", "weight"),
        (
            "version: 1\nterms: {a: '{b}', b: '{a}'}\nscenarios: {lost_device: {signals: "
            "[{any: ['{a}']}]}}\n",
            "cycle",
        ),
        ("version: 1\nscenarios: {lost_device: {rules: []}}\n", "signals"),
    ],
)
def test_unusable_rules_file_gives_a_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError, match=message) as info:
        load_rules(path)
    assert str(path) in str(info.value)


def test_missing_rules_file_gives_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(RulesError, match="cannot read ticket rules file") as info:
        load_rules(missing)
    assert str(missing) in str(info.value)


def test_a_directory_is_not_a_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path)


def test_packaged_rules_cover_every_runbook_scenario(rules: TicketRules) -> None:
    assert {r.scenario for r in rules.scenarios} == set(Scenario) - {S.OTHER}
