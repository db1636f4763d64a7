// The citizen-facing verify page (api/web/verify.html).
//
// It checks a record in the browser, taking nobody's word for it: it fetches the disclosed proof
// bundle (`/v1/shared/<token>`, or a file the user uploads or pastes), recomputes the field
// hashes, the leaf and the Merkle path (sijill-verify.js), and reads the batch root, the leaf's
// status and the agency from the chain through a read-only JSON-RPC endpoint. Which chain and
// which RecordLedger count is the node's embedded config (`#sijill-config`), never the bundle's
// say: a bundle naming another deployment comes out not authentic.
//
// Everything shown is built with textContent (no HTML from data), in Arabic or English; the
// state lives in `state` and `render*` draw it, so switching language redraws without asking
// anything again.

import { formatCairoTime } from './cairo-time.js';

const LANGS = ['ar', 'en'];
const STORE_KEY = 'sijill.lang';
const MAX_BUNDLE = 256 * 1024;
const PENDING_POLLS = 30;
const CONFIRMED = new Set(['authentic-current', 'superseded', 'revoked']);
const SETTLED_WITH_RETRY = new Set(['unknown', 'error', 'rate-limited', 'pending']);
const CHECKS = ['integrity', 'inclusion', 'anchored', 'authority', 'status', 'receipt'];
// How long one call to a chain endpoint may take before the page says "cannot check now": a
// healthy endpoint answers in milliseconds, and a clerk at a counter cannot wait out a hung one.
const CHAIN_TIMEOUT_MS = 4000;
// What each check relies on: fields → leaf (integrity) → root (inclusion) → chain (anchored) →
// agency (authority) and status; the receipt vouches for the leaf and promised a time of anchoring.
// When one of these failed, a check built on it says nothing about this document: the page shows
// it as not applicable, never as passed (docs/certificates.md, "The verify page").
const RELIES_ON = {
  inclusion: ['integrity'],
  anchored: ['integrity', 'inclusion'],
  authority: ['anchored'],
  status: ['anchored'],
  receipt: ['integrity', 'anchored'],
};
// The number the registry itself gives a record, which a clerk compares with the paper: one field
// of each record type (ledger/records/). The internal record id is only for experts.
const REGISTRY_NUMBER = { title: 'title_number', marriage: 'contract_number', commercial: 'registration_number' };

// ------------------------------------------------------------------------------ texts

const TEXT = {
  brand: { ar: 'سجل · القيود الرسمية', en: 'Sijill · official records' },
  docTitle: { ar: 'التحقق من قيد رسمي', en: 'Verify an official record' },
  titleShare: { ar: 'التحقق من شهادة قيد', en: 'Verify a registry certificate' },
  titleUpload: { ar: 'التحقق من مستند إثبات', en: 'Verify a proof bundle' },
  switchTo: { ar: 'English', en: 'العربية' },
  switchLabel: { ar: 'Switch to English — التبديل إلى الإنجليزية', en: 'التبديل إلى العربية — Switch to Arabic' },
  footer: {
    ar:
      'دفتر القيود المشترك سجل إلكتروني تحفظ فيه الجهات الحكومية بصمة كل قيد، فلا يمكن تغيير قيد أو حذفه دون أن يظهر ذلك. ' +
      'يطابق هذا المتصفح المستند مع الدفتر بنفسه، ولا يأخذ النتيجة من خادم الجهة.',
    en:
      'The shared ledger is an electronic register in which government agencies keep a fingerprint of every record, so no record can be changed or removed unnoticed. ' +
      'This browser checks the document against the ledger itself; it does not take the result from the agency’s server.',
  },
  // upload form
  uploadTitle: { ar: 'تحقق من مستند إثبات', en: 'Check a proof bundle' },
  uploadHelp: {
    ar: 'اختر ملف مستند الإثبات (JSON) أو الصق نصه، ثم اضغط «تحقق».',
    en: 'Choose the proof bundle file (JSON) or paste its text, then press “Verify”.',
  },
  fileLabel: { ar: 'ملف مستند الإثبات', en: 'Proof bundle file' },
  pasteLabel: { ar: 'أو الصق نص مستند الإثبات', en: 'Or paste the proof bundle’s text' },
  verifyButton: { ar: 'تحقق', en: 'Verify' },
  uploadEmpty: { ar: 'اختر ملفًا أو الصق نص المستند أولًا.', en: 'Choose a file or paste the document first.' },
  uploadTooLarge: { ar: 'المستند أكبر من 256 كيلوبايت.', en: 'The document is larger than 256 KiB.' },
  uploadUnreadable: { ar: 'تعذرت قراءة الملف.', en: 'The file could not be read.' },
  another: { ar: 'تحقق من مستند آخر', en: 'Verify another document' },
  // verdicts: title, text
  'loading.title': { ar: 'جارٍ التحقق…', en: 'Checking…' },
  'loading.text': {
    ar: 'يُرجى الانتظار: تتم مطابقة المستند مع دفتر القيود المشترك الآن.',
    en: 'Please wait: the document is being checked against the ledger.',
  },
  'authentic-current.title': { ar: 'قيد أصلي وساري', en: 'Authentic and current' },
  'authentic-current.text': {
    ar: 'البيانات مطابقة لما ثبّتته الجهة المصدرة في دفتر القيود المشترك، ولم يُعدَّل القيد ولم يُلغَ.',
    en: 'The data match what the issuing agency anchored on the ledger, and the record has been neither amended nor revoked.',
  },
  'superseded.title': { ar: 'صدر إصدار أحدث من هذا القيد', en: 'Superseded by a newer version' },
  'superseded.text': {
    ar: 'هذا الإصدار أصلي لكنه لم يعد ساريًا: عُدِّل القيد بعده. لا يُعتد به، واطلب الإصدار الحالي.',
    en: 'This version is authentic but no longer current: the record was amended since. Do not rely on it; ask for the current version.',
  },
  'revoked.title': { ar: 'قيد مُلغى', en: 'Revoked' },
  'revoked.text': {
    ar: 'ألغت الجهة المصدرة هذا القيد، فلا يُعتد به.',
    en: 'The issuing agency revoked this record: do not rely on it.',
  },
  'not-authentic.title': { ar: 'غير أصلي', en: 'Not authentic' },
  'not-authentic.text': {
    ar: 'المستند لا يطابق ما هو مثبت في دفتر القيود المشترك: لا يُعتد به. لا تُعرض بياناته لأنها غير مؤكدة.',
    en: 'The document does not match what is anchored on the ledger: do not rely on it. Its data are not shown, since they are not confirmed.',
  },
  'pending.title': { ar: 'بانتظار التثبيت في دفتر القيود المشترك', en: 'Pending anchoring' },
  'pending.text': {
    ar: 'استلمت الجهة القيد ولم تثبّته في دفتر القيود المشترك بعد، فلا يمكن تأكيده الآن.',
    en: 'The agency has accepted the record but not yet anchored it on the ledger, so it cannot be confirmed yet.',
  },
  'unknown.title': { ar: 'تعذر التحقق الآن', en: 'Cannot check now' },
  'unknown.text': {
    ar: 'لم يرد دفتر القيود المشترك أو خادم الجهة في الوقت المحدد. لا تعتمد على المستند حتى يتم التحقق منه؛ أعد المحاولة بعد قليل.',
    en: 'The ledger or the agency’s server did not answer in time. Do not rely on the document until it has been checked; try again in a moment.',
  },
  'incomplete.title': { ar: 'ليس ملف إثبات كاملًا', en: 'Not a complete proof file' },
  'incomplete.text': {
    ar: 'النص ناقص أو ليس ملف إثبات صادرًا عن جهة، فلم يُفحص شيء. انسخ الملف كاملًا مرة أخرى، أو اطلبه من صاحبه.',
    en: 'The text is cut short or is not a proof file from an agency, so nothing was checked. Copy the whole file again, or ask its holder for it.',
  },
  'withdrawn.title': { ar: 'شهادة مسحوبة', en: 'Withdrawn by the holder' },
  'withdrawn.text': {
    ar: 'سحب صاحب الشهادة الإذن بالاطلاع عليها، فلم يعد هذا الرمز يفتحها. اطلب منه شهادة سارية.',
    en: 'This code no longer opens the certificate. Ask its holder for a current one.',
  },
  'not-found.title': { ar: 'رمز غير معروف', en: 'Unknown code' },
  'not-found.text': {
    ar: 'لا توجد شهادة بهذا الرمز. تأكد من مسح الرمز أو كتابته كاملًا.',
    en: 'No certificate has this code. Check that it was scanned or typed whole.',
  },
  'rate-limited.title': { ar: 'طلبات كثيرة جدًا', en: 'Too many requests' },
  'rate-limited.text': {
    ar: 'وصلت من هذا الجهاز طلبات كثيرة. انتظر قليلًا ثم أعد المحاولة.',
    en: 'Too many requests came from this device. Wait a little, then try again.',
  },
  'error.title': { ar: 'تعذر إتمام التحقق', en: 'The check could not be completed' },
  'error.text': {
    ar: 'حدث خطأ غير متوقع. لا تعتمد على المستند حتى يتم التحقق منه؛ أعد المحاولة.',
    en: 'Something unexpected went wrong. Do not rely on the document until it has been checked; try again.',
  },
  wrongChain: {
    ar: 'خادم هذه الجهة متصل بدفتر قيود غير الدفتر المعتمد.',
    en: 'This server’s chain endpoint is on another chain than the configured one.',
  },
  retry: { ar: 'أعد المحاولة', en: 'Try again' },
  retryIn: { ar: 'يمكنك إعادة المحاولة بعد {n} ثانية.', en: 'You can try again in {n} seconds.' },
  pendingBy: { ar: 'موعد التثبيت المتعهد به: {t}', en: 'Anchoring promised by: {t}' },
  pendingAuto: { ar: 'ستُعاد المحاولة تلقائيًا.', en: 'The page will check again by itself.' },
  revokedReason: { ar: 'سبب الإلغاء', en: 'Reason' },
  successorLink: { ar: 'افتح الإصدار الحالي من القيد', en: 'Open the current version of the record' },
  noSuccessor: {
    ar: 'لم يربط صاحب الشهادة الإصدار الحالي بهذه الشهادة: اطلب منه شهادة بالإصدار الحالي.',
    en: 'The holder has not linked the current version to this certificate: ask them for a certificate of it.',
  },
  agencySuspended: {
    ar: 'الجهة المصدرة موقوفة حاليًا؛ وقد ثُبِّت القيد حين كانت مفوّضة.',
    en: 'The issuing agency is suspended now; the record was anchored while it was authorised.',
  },
  // the record
  recordTitle: { ar: 'القيد', en: 'The record' },
  recordType: { ar: 'نوع القيد', en: 'Record type' },
  registryNumber: { ar: 'رقم القيد', en: 'Registry number' },
  notDisclosed: {
    ar: 'لم يُفصح عنه صاحب الشهادة',
    en: 'not disclosed by the holder',
  },
  recordId: { ar: 'المعرّف الداخلي للقيد', en: 'Internal record ID' },
  version: { ar: 'الإصدار', en: 'Version' },
  agency: { ar: 'الجهة المصدرة', en: 'Issuing agency' },
  agencyNameRefused: {
    ar: 'في اسم الجهة كما سُجِّل في دفتر القيود المشترك محارف خفية أو محارف تغيّر اتجاه الكتابة، وهي معروضة هنا بين ⟨ ⟩. اعتمد على رمز الجهة.',
    en: 'The agency’s name as registered on the ledger holds invisible or direction-changing characters, shown here between ⟨ ⟩. Rely on the agency code.',
  },
  anchoredAt: { ar: 'تاريخ التثبيت في دفتر القيود المشترك', en: 'Anchored on the ledger' },
  block: { ar: 'رقم الكتلة', en: 'Block number' },
  fieldsTitle: { ar: 'بيانات القيد', en: 'The record’s data' },
  hiddenNote: {
    ar: 'البيانات الموصوفة بأنها «مخفية» حجبها صاحب الشأن؛ يبقى التحقق من سائر البيانات صحيحًا.',
    en: 'Fields marked “hidden” were withheld by the holder; the rest still verify.',
  },
  hidden: { ar: 'مخفي', en: 'hidden' },
  none: { ar: 'لا يوجد', en: 'none' },
  yes: { ar: 'نعم', en: 'yes' },
  no: { ar: 'لا', en: 'no' },
  // experts
  experts: { ar: 'تفاصيل للمختصين', en: 'Details for experts' },
  expertsHelp: {
    ar: 'الفحوص الستة التي أجراها هذا المتصفح على المستند وفي دفتر القيود المشترك (وهو سلسلة كتل، blockchain):',
    en: 'The six checks this browser ran on the document and against the shared ledger (a blockchain):',
  },
  incompleteHelp: { ar: 'سبب رفض الملف (بالإنجليزية):', en: 'Why the file was refused:' },
  'check.integrity': { ar: 'سلامة البيانات', en: 'Integrity of the data' },
  'check.inclusion': { ar: 'الانتماء إلى دفعة التثبيت', en: 'Inclusion in the anchored batch' },
  'check.anchored': { ar: 'التثبيت في دفتر القيود المشترك', en: 'Anchored on the ledger' },
  'check.authority': { ar: 'صلاحية الموقّع والجهة', en: 'Authority of the signer and agency' },
  'check.status': { ar: 'سريان القيد', en: 'Status of the record' },
  'check.receipt': { ar: 'إيصال الاستلام', en: 'Intake receipt' },
  'outcome.pass': { ar: 'ناجح', en: 'passed' },
  'outcome.fail': { ar: 'لم ينجح', en: 'failed' },
  'outcome.unknown': { ar: 'غير محسوم', en: 'undetermined' },
  'outcome.skipped': { ar: 'لم يُفحص', en: 'not applicable' },
  skippedBecause: {
    ar: 'لا ينطبق: يقوم هذا الفحص على فحص «{check}» الذي لم ينجح، فلا يدل على شيء في هذا المستند.',
    en: 'Not applicable: this check rests on “{check}”, which failed, so it says nothing about this document.',
  },
  technical: { ar: 'بيانات تقنية', en: 'Technical data' },
  chainId: { ar: 'معرّف دفتر القيود (chain ID)', en: 'Chain ID' },
  ledger: { ar: 'عقد السجل (RecordLedger)', en: 'RecordLedger contract' },
  leaf: { ar: 'بصمة القيد (leaf)', en: 'Record leaf' },
  root: { ar: 'جذر الدفعة (root)', en: 'Batch root' },
  signer: { ar: 'الموقّع', en: 'Signer' },
  endpoint: { ar: 'نقطة الاتصال بدفتر القيود (RPC)', en: 'Chain endpoint' },
  // cross-check
  crossTitle: { ar: 'تحقق عبر نقطة اتصال جهة أخرى', en: 'Check against another agency’s endpoint' },
  crossHelp: {
    ar: 'لمزيد من الاطمئنان، أعد التحقق نفسه عبر نقطة اتصال جهة أخرى بدفتر القيود نفسه.',
    en: 'For more assurance, run the same check through another agency’s endpoint on the same chain.',
  },
  crossPeer: { ar: 'نقطة اتصال معروفة', en: 'Known endpoint' },
  crossPeerNone: { ar: '— اختر —', en: '— choose —' },
  crossUrl: { ar: 'أو اكتب عنوان نقطة الاتصال', en: 'Or type the endpoint’s address' },
  crossUrlOnly: { ar: 'عنوان نقطة الاتصال', en: 'The endpoint’s address' },
  crossButton: { ar: 'تحقق عبرها', en: 'Check through it' },
  crossChecking: { ar: 'جارٍ التحقق عبر نقطة الاتصال:', en: 'Checking through the endpoint:' },
  crossEmpty: { ar: 'اختر نقطة اتصال أو اكتب عنوانها.', en: 'Choose an endpoint or type its address.' },
  crossBadUrl: {
    ar: 'العنوان يجب أن يبدأ بـ http:// أو https://',
    en: 'The address must start with http:// or https://',
  },
  crossWrongChain: {
    ar: 'رُفضت نقطة الاتصال: إنها على دفتر قيود آخر (معرّف {got} بدلًا من {want}).',
    en: 'Endpoint refused: it is on another chain (chain ID {got}, not {want}).',
  },
  crossUnreachable: {
    ar: 'تعذر الاتصال بنقطة الاتصال هذه الآن.',
    en: 'This endpoint could not be reached now.',
  },
  crossResult: { ar: 'النتيجة عبر نقطة الاتصال:', en: 'The result through the endpoint:' },
  crossAgrees: { ar: 'تتفق مع نتيجة هذه الصفحة.', en: 'It agrees with this page’s result.' },
  crossDisagrees: {
    ar: 'لا تتفق مع نتيجة هذه الصفحة: لا تعتمد على المستند قبل الاستيضاح.',
    en: 'It does not agree with this page’s result: do not rely on the document before clearing this up.',
  },
};

// ------------------------------------------------------------------------------ state

const config = readConfig();
const state = {
  lang: pickLang(),
  mode: 'share', // 'share' (a token in the path) or 'upload' (/verify)
  token: null,
  verdict: 'loading', // data-verdict: a ledger verdict, or loading/idle/withdrawn/not-found/rate-limited/error
  report: null,
  doc: null, // the bundle as JSON, for display
  text: null, // the bundle's text, as verified
  agencyName: null,
  successor: null,
  pending: null,
  retryAfter: null,
  message: null, // a TEXT key with more about an error
  refusal: null, // why a text is not a proof file (the parser's words, for experts)
  cross: null, // {phase, url, verdict, agrees, message}
  crossInput: { peer: '', url: '' },
  uploadError: null, // a TEXT key
  expertsOpen: null, // the reader's choice, kept across a change of language
  polls: 0,
};
let lib = null;
let labels = { recordTypes: {}, segments: {}, items: {}, values: {}, governorates: {}, ui: {} };
let segmentOrder = new Map();
let generation = 0; // a newer verification makes older answers stale

function readConfig() {
  const fallback = { agency: '', chainId: 0, ledger: '', rpc: '/rpc', peers: [] };
  try {
    const element = document.getElementById('sijill-config');
    const parsed = JSON.parse(element ? element.textContent : '');
    return { ...fallback, ...parsed, peers: Array.isArray(parsed.peers) ? parsed.peers : [] };
  } catch {
    return fallback;
  }
}

function pickLang() {
  const asked = new URLSearchParams(window.location.search).get('lang');
  if (LANGS.includes(asked)) {
    return asked;
  }
  try {
    const stored = window.localStorage.getItem(STORE_KEY);
    if (LANGS.includes(stored)) {
      return stored;
    }
  } catch {
    // storage refused (private mode): the default it is
  }
  return 'ar';
}

function t(key, vars = {}) {
  const entry = TEXT[key];
  let text = entry ? entry[state.lang] : key;
  for (const [name, value] of Object.entries(vars)) {
    text = text.replace(`{${name}}`, String(value));
  }
  return text;
}

// ------------------------------------------------------------------------------ DOM helpers

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith('on')) {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  pass: ['M9 16.2l-3.5-3.5L4 14.2l5 5 11-11-1.5-1.5z'],
  fail: ['M18.3 5.7L16.9 4.3 12 9.2 7.1 4.3 5.7 5.7 10.6 12l-4.9 6.3 1.4 1.4 4.9-4.9 4.9 4.9 1.4-1.4-4.9-4.9z'],
  warn: ['M1 21h22L12 2 1 21zm12-3h-2v-2h2v2zm0-4h-2v-4h2v4z'],
  clock: [
    'M12 2a10 10 0 100 20 10 10 0 000-20zm0 18a8 8 0 110-16 8 8 0 010 16z',
    'M12.5 7H11v6l5.2 3.2.8-1.3-4.5-2.7z',
  ],
  question: [
    'M12 2a10 10 0 100 20 10 10 0 000-20zm1 17h-2v-2h2v2zm2.1-7.7l-.9.9c-.7.7-1.2 1.3-1.2 2.8h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3c.4-.4.6-.9.6-1.4a2 2 0 00-4 0H8a4 4 0 018 0c0 .9-.4 1.7-.9 2.3z',
  ],
  skipped: ['M5 11h14v2H5z'],
  block: ['M12 2a10 10 0 100 20 10 10 0 000-20zM4 12a8 8 0 0112.9-6.3L5.7 16.9A7.9 7.9 0 014 12zm8 8a7.9 7.9 0 01-4.9-1.7L18.3 7.1A8 8 0 0112 20z'],
  spinner: ['M12 4V1L8 5l4 4V6a6 6 0 11-6 6H4a8 8 0 108-8z'],
};

function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

const VERDICT_ICON = {
  loading: 'spinner',
  'authentic-current': 'pass',
  superseded: 'warn',
  revoked: 'block',
  'not-authentic': 'fail',
  incomplete: 'warn',
  pending: 'clock',
  unknown: 'question',
  withdrawn: 'block',
  'not-found': 'question',
  'rate-limited': 'clock',
  error: 'question',
};

// ------------------------------------------------------------------------------ labels

async function loadLabels() {
  try {
    const response = await fetch(new URL('./labels.json', import.meta.url), { cache: 'no-cache' });
    if (response.ok) {
      const loaded = await response.json();
      labels = { ...labels, ...loaded };
      segmentOrder = new Map(Object.keys(labels.segments || {}).map((name, index) => [name, index]));
    }
  } catch {
    // without labels the paths themselves are shown
  }
}

function label(table, key) {
  const entry = (labels[table] || {})[key];
  return entry && typeof entry[state.lang] === 'string' ? entry[state.lang] : null;
}

function segmentsOf(path) {
  return path
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/** The label of a JSON Pointer: `/owners/0/name` → "المالك 1 › الاسم" / "Owner 1 › Name". */
function fieldLabel(path) {
  const segments = segmentsOf(path);
  const parts = [];
  for (let i = 0; i < segments.length; i += 1) {
    const segment = segments[i];
    const next = segments[i + 1];
    if (next !== undefined && INDEX.test(next) && !INDEX.test(segment)) {
      const item = label('items', segment) || label('segments', segment) || segment;
      parts.push(`${item} ${Number(next) + 1}`);
      i += 1;
    } else if (INDEX.test(segment)) {
      parts.push(String(Number(segment) + 1));
    } else {
      parts.push(label('segments', segment) || segment);
    }
  }
  return parts.join(' › ');
}

// Where a value is a code word (api/web/README.md, "Values"): the enum fields and currency codes
// are translated, governorate codes are named; every other value is shown exactly as recorded.
const CODE_WORD_FIELDS = new Set(['/use', '/encumbrances/*/kind', '/legal_form', '/status/state']);
const GOVERNORATE_FIELDS = new Set(['/governorate', '/head_office/governorate']);

function shapeOf(path) {
  return `/${segmentsOf(path)
    .map((segment) => (INDEX.test(segment) ? '*' : segment))
    .join('/')}`;
}

/** A disclosed value as shown: code words translated, governorates named, the rest as is. */
function fieldValue(path, value) {
  if (value === null || (typeof value === 'object' && Object.keys(value).length === 0)) {
    return label('ui', 'none') || t('none');
  }
  if (typeof value === 'boolean') {
    return label('ui', value ? 'yes' : 'no') || t(value ? 'yes' : 'no');
  }
  if (typeof value !== 'string') {
    return String(value);
  }
  const shape = shapeOf(path);
  if (GOVERNORATE_FIELDS.has(shape)) {
    const name = label('governorates', value);
    return name ? `${name} (${value})` : value;
  }
  if (CODE_WORD_FIELDS.has(shape) || shape.endsWith('/currency')) {
    return label('values', value) || value;
  }
  return value;
}

function orderKey(path) {
  return segmentsOf(path).map((segment) =>
    INDEX.test(segment)
      ? [0, Number(segment), '']
      : [1, segmentOrder.has(segment) ? segmentOrder.get(segment) : 1e6, segment],
  );
}

function compareKeys(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    for (let j = 0; j < 3; j += 1) {
      if (a[i][j] < b[i][j]) return -1;
      if (a[i][j] > b[i][j]) return 1;
    }
  }
  return a.length - b.length;
}

// ------------------------------------------------------------------------------ formatting

function formatTime(seconds) {
  try {
    return formatCairoTime(seconds, state.lang);
  } catch {
    // a browser without Cairo's zone data: UTC, said so, rather than a wrong local time
    return `${new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
  }
}

function recordTypeName(code) {
  return label('recordTypes', code) || code;
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// ------------------------------------------------------------------------------ verification

class WrongChain extends Error {
  constructor(got) {
    super(`chain ${got}, not ${config.chainId}`);
    this.got = got;
  }
}

let loading = null;

async function library() {
  loading ??= import('./sijill-verify.js').catch((error) => {
    loading = null; // a retry tries again
    throw error;
  });
  lib = await loading;
  return lib;
}

/**
 * The chain id an endpoint reports, or null when its answer does not say (RpcChain.init then
 * fails). An endpoint that cannot be reached, or does not answer within CHAIN_TIMEOUT_MS, throws:
 * asking it anything more would only make the reader wait as long again.
 */
async function reportedChainId(url) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'eth_chainId', params: [] }),
    credentials: 'omit',
    signal: AbortSignal.timeout(CHAIN_TIMEOUT_MS),
  });
  try {
    const reply = await response.json();
    return typeof reply.result === 'string' && /^0x[0-9a-f]+$/i.test(reply.result) ? Number(BigInt(reply.result)) : null;
  } catch {
    return null;
  }
}

/**
 * A chain reader on `url` for the configured ledger, refused unless it is the configured chain.
 * Another agency's endpoint is first asked only its chain id: on another chain the configured
 * ledger does not exist, and "wrong chain" is the answer a person can act on.
 */
async function openChain(url, { foreign = false } = {}) {
  if (foreign) {
    const got = await reportedChainId(url);
    if (got !== null && got !== Number(config.chainId)) {
      throw new WrongChain(got);
    }
  }
  const { RpcChain } = await library();
  const chain = new RpcChain(url, { ledger: config.ledger, timeoutMs: CHAIN_TIMEOUT_MS });
  await chain.init();
  const got = Number(chain.chainId ?? chain.chain_id);
  if (got !== Number(config.chainId)) {
    throw new WrongChain(got);
  }
  return chain;
}

function isChainUnavailable(error) {
  return (lib && error instanceof lib.ChainUnavailable) || (error && error.name === 'ChainUnavailable');
}

function isNetworkError(error) {
  return error instanceof TypeError && /fetch|network/i.test(String(error.message));
}

async function agencyName(chain, code) {
  try {
    if (typeof chain.agencyInfo === 'function') {
      const info = await chain.agencyInfo(code);
      if (info && typeof info.name === 'string' && info.name) {
        return info.name;
      }
    }
  } catch {
    // the name is a courtesy; the verdict does not depend on it
  }
  return null;
}

/** Verify a bundle's text against this node's chain endpoint, and show the outcome. */
async function verifyText(text, mine) {
  try {
    const { verify, parseBundle, BundleError } = await library();
    try {
      parseBundle(text);
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      // Cut short or not a bundle at all: nothing can be checked, and "not authentic" would say
      // more than is known. No chain is asked.
      if (mine !== generation) return;
      Object.assign(state, { verdict: 'incomplete', text, refusal: error.message });
      render();
      return;
    }
    const chain = await openChain(config.rpc);
    const report = await verify(text, chain, { now: nowSeconds() });
    if (mine !== generation) return;
    let doc = null;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = null;
    }
    const name = CONFIRMED.has(report.verdict) && doc ? await agencyName(chain, doc.agency) : null;
    if (mine !== generation) return;
    Object.assign(state, { report, doc, text, agencyName: name, verdict: report.verdict, cross: null });
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof WrongChain) {
      Object.assign(state, { verdict: 'error', message: 'wrongChain' });
    } else if (isChainUnavailable(error) || isNetworkError(error)) {
      Object.assign(state, { verdict: 'unknown', text });
    } else {
      Object.assign(state, { verdict: 'error', text });
    }
  }
  render();
}

function retryAfter(response) {
  const seconds = Number.parseInt(response.headers.get('Retry-After') || '', 10);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 3600) : null;
}

function successorOf(response) {
  const header = response.headers.get('Link') || '';
  for (const part of header.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /rel\s*=\s*"?successor-version"?/i.test(match[2])) {
      try {
        const url = new URL(match[1], window.location.href);
        if (url.protocol === 'http:' || url.protocol === 'https:') {
          return url.href;
        }
      } catch {
        // not a URL: no link
      }
    }
  }
  return null;
}

/** Share mode: fetch the disclosed bundle the token opens, then verify it. */
async function checkShare() {
  const mine = (generation += 1);
  resetResult();
  render();
  let response;
  let body;
  try {
    response = await fetch(`/v1/shared/${encodeURIComponent(state.token)}`, {
      cache: 'no-store',
      headers: { Accept: 'application/json' },
      credentials: 'omit',
    });
    body = await response.text();
  } catch {
    if (mine === generation) {
      state.verdict = 'unknown';
      render();
    }
    return;
  }
  if (mine !== generation) return;
  state.successor = successorOf(response);
  state.retryAfter = retryAfter(response);
  if (response.status === 200) {
    await verifyText(body, mine);
    return;
  }
  if (response.status === 202) {
    let pending = {};
    try {
      pending = JSON.parse(body);
    } catch {
      pending = {};
    }
    Object.assign(state, { verdict: 'pending', pending });
    schedulePendingPoll(mine);
  } else {
    const verdicts = { 404: 'not-found', 410: 'withdrawn', 429: 'rate-limited' };
    state.verdict = verdicts[response.status] || (response.status >= 500 ? 'unknown' : 'error');
  }
  render();
}

function schedulePendingPoll(mine) {
  if (state.polls >= PENDING_POLLS) return;
  state.polls += 1;
  const wait = Math.max(5, state.retryAfter || 30) * 1000;
  window.setTimeout(() => {
    if (mine === generation && state.verdict === 'pending') {
      checkShare();
    }
  }, wait);
}

function resetResult() {
  Object.assign(state, {
    verdict: 'loading',
    report: null,
    doc: null,
    text: null,
    agencyName: null,
    successor: null,
    pending: null,
    retryAfter: null,
    message: null,
    refusal: null,
    cross: null,
    expertsOpen: null,
  });
}

/** Upload mode: read the file or the pasted text, then verify it. */
async function onUpload(event) {
  event.preventDefault();
  const text = await uploadedText();
  state.uploadError = typeof text === 'string' ? null : text.error;
  renderUploadError();
  if (state.uploadError) return;
  const mine = (generation += 1);
  resetResult();
  render();
  await verifyText(text, mine);
  focusVerdict();
}

/** The chosen file's text, else the pasted text; or {error: a TEXT key}. */
async function uploadedText() {
  const fileInput = document.getElementById('bundle-file');
  const file = fileInput.files && fileInput.files[0];
  let text = document.getElementById('bundle-text').value;
  if (file) {
    if (file.size > MAX_BUNDLE) return { error: 'uploadTooLarge' };
    try {
      text = await file.text();
    } catch {
      return { error: 'uploadUnreadable' };
    }
  }
  if (!text.trim()) return { error: 'uploadEmpty' };
  if (new TextEncoder().encode(text).length > MAX_BUNDLE) return { error: 'uploadTooLarge' };
  return text;
}

function renderUploadError() {
  document.getElementById('upload-error').textContent = state.uploadError ? t(state.uploadError) : '';
}

function retry() {
  if (state.mode === 'share') {
    checkShare();
  } else if (state.text) {
    const mine = (generation += 1);
    const { text } = state;
    resetResult();
    render();
    verifyText(text, mine);
  }
}

function focusVerdict() {
  const title = document.getElementById('verdict-title');
  if (title) {
    title.focus({ preventScroll: false });
  }
}

/** Run the same verification through another endpoint and compare. */
async function onCrossCheck(event) {
  event.preventDefault();
  const typed = state.crossInput.url.trim();
  const url = typed || state.crossInput.peer;
  if (!url) {
    state.cross = { phase: 'refused', message: 'crossEmpty' };
    renderCross();
    return;
  }
  let parsed;
  try {
    parsed = new URL(url, window.location.href);
  } catch {
    parsed = null;
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) {
    state.cross = { phase: 'refused', url, message: 'crossBadUrl' };
    renderCross();
    return;
  }
  const mine = generation;
  const target = parsed.href;
  state.cross = { phase: 'loading', url: target };
  renderCross();
  let outcome;
  try {
    const chain = await openChain(target, { foreign: true });
    const { verify } = await library();
    const report = await verify(state.text, chain, { now: nowSeconds() });
    outcome =
      report.verdict === 'unknown' // it could not read the chain: no opinion either way
        ? { phase: 'unreachable', url: target, message: 'crossUnreachable' }
        : { phase: 'done', url: target, verdict: report.verdict, agrees: report.verdict === state.verdict };
  } catch (error) {
    if (error instanceof WrongChain) {
      outcome = { phase: 'refused', url: target, message: 'crossWrongChain', got: error.got };
    } else {
      outcome = { phase: 'unreachable', url: target, message: 'crossUnreachable' };
    }
  }
  if (mine === generation) {
    state.cross = outcome;
    renderCross();
  }
}

// ------------------------------------------------------------------------------ rendering

function render() {
  const { lang } = state;
  const root = document.documentElement;
  root.lang = lang;
  root.dir = lang === 'ar' ? 'rtl' : 'ltr';
  document.title = `${t(state.mode === 'upload' ? 'titleUpload' : 'titleShare')} — ${t('brand')}`;
  for (const element of document.querySelectorAll('[data-t]')) {
    element.textContent = t(element.dataset.t);
  }
  document.getElementById('page-title').textContent = t(state.mode === 'upload' ? 'titleUpload' : 'titleShare');
  const switcher = document.getElementById('lang-switch');
  const other = lang === 'ar' ? 'en' : 'ar';
  switcher.textContent = t('switchTo');
  switcher.lang = other;
  switcher.dir = other === 'ar' ? 'rtl' : 'ltr';
  switcher.setAttribute('aria-label', t('switchLabel'));
  document.getElementById('upload').hidden = state.mode !== 'upload';
  const another = document.getElementById('another');
  another.hidden = state.mode === 'upload' || state.verdict === 'loading';
  document.getElementById('another-link').href = lang === 'en' ? '/verify?lang=en' : '/verify';
  renderUploadError();
  renderVerdict();
  renderExtra();
  renderResult();
}

function renderVerdict() {
  const section = document.getElementById('verdict');
  const { verdict } = state;
  section.dataset.verdict = verdict;
  section.hidden = verdict === 'idle';
  section.setAttribute('aria-busy', verdict === 'loading' ? 'true' : 'false');
  const key = verdict === 'idle' ? 'loading' : verdict;
  const texts = [h('p', { class: 'verdict-text' }, t(`${key}.text`))];
  if (verdict === 'revoked') {
    const reason = revocationReason();
    if (reason) {
      texts.push(
        h('p', { class: 'verdict-reason', 'data-reason': 'revocation' }, `${t('revokedReason')}: `, h('bdi', {}, reason)),
      );
    }
  }
  if (verdict === 'pending' && state.pending && Number.isInteger(state.pending.anchorBy)) {
    texts.push(h('p', { class: 'verdict-reason' }, t('pendingBy', { t: formatTime(state.pending.anchorBy) })));
    texts.push(h('p', { class: 'verdict-reason' }, t('pendingAuto')));
  }
  if ((verdict === 'rate-limited' || verdict === 'unknown') && state.retryAfter) {
    texts.push(h('p', { class: 'verdict-reason' }, t('retryIn', { n: state.retryAfter })));
  }
  if (state.message && verdict === 'error') {
    texts.push(h('p', { class: 'verdict-reason' }, t(state.message)));
  }
  section.replaceChildren(
    h(
      'div',
      { class: 'verdict-head' },
      h('div', { class: 'verdict-icon' }, icon(VERDICT_ICON[key] || 'question')),
      h('h2', { id: 'verdict-title', class: 'verdict-title', tabindex: '-1' }, t(`${key}.title`)),
    ),
    h('div', { class: 'verdict-body' }, texts),
  );
}

function renderExtra() {
  const extra = document.getElementById('verdict-extra');
  const items = [];
  const authority = checkOf('authority');
  if (state.report && authority && authority.details && authority.details.agencyStatus === 'suspended') {
    items.push(
      h(
        'p',
        { class: 'warning', 'data-warning': 'agency-suspended', role: 'note' },
        icon('warn'),
        h('span', {}, t('agencySuspended')),
      ),
    );
  }
  if (state.verdict === 'superseded') {
    items.push(
      state.successor
        ? h(
            'p',
            { class: 'successor' },
            h('a', { id: 'successor-link', class: 'button primary', href: state.successor }, t('successorLink')),
          )
        : h('p', { class: 'successor muted' }, t('noSuccessor')),
    );
  }
  if (SETTLED_WITH_RETRY.has(state.verdict) && (state.mode === 'share' || state.text)) {
    items.push(h('p', {}, h('button', { type: 'button', id: 'retry', class: 'button', onclick: retry }, t('retry'))));
  }
  extra.replaceChildren(...items);
}

/** The revocation reason in the page's language: the ledger's table for the code the chain holds. */
function revocationReason() {
  const status = checkOf('status');
  if (!status) return null;
  const known = lib && lib.REVOCATION_REASONS ? lib.REVOCATION_REASONS[status.details && status.details.reason] : null;
  if (known) return known[state.lang === 'ar' ? 1 : 0];
  return status.reason[state.lang];
}

function checkOf(name) {
  return state.report ? state.report.checks.find((c) => c.name === name) : null;
}

function renderResult() {
  const result = document.getElementById('result');
  const parts = [];
  const { report, doc } = state;
  if (report && doc && CONFIRMED.has(state.verdict)) {
    parts.push(recordCard(doc), fieldsCard(doc));
  } else if (state.verdict === 'pending' && state.pending && state.pending.recordType) {
    parts.push(pendingCard(state.pending));
  }
  if (report) {
    parts.push(expertsCard(report, doc));
  } else if (state.verdict === 'incomplete' && state.refusal) {
    parts.push(refusalCard(state.refusal));
  }
  result.replaceChildren(...parts);
  if (report && state.text) {
    renderCross();
  }
}

function row(labelText, value, attrs = {}) {
  return h('div', { class: 'row', ...attrs }, h('dt', {}, labelText), h('dd', {}, value));
}

/**
 * The record as a clerk compares it with the paper: the registry's own number first (title,
 * contract or commercial registration number), then version, agency and when it was anchored.
 * The internal record id and the block are for experts (expertsCard).
 */
function recordCard(doc) {
  const anchored = checkOf('anchored');
  const details = (anchored && anchored.details) || {};
  const rows = [
    registryNumberRow(doc),
    row(t('version'), h('bdi', { dir: 'ltr' }, String(doc.version)), { 'data-item': 'version' }),
    row(t('agency'), agencyNameParts(state.agencyName, doc.agency), { 'data-item': 'agency' }),
  ];
  if (Number.isInteger(details.timestamp)) {
    rows.push(row(t('anchoredAt'), formatTime(details.timestamp), { 'data-item': 'anchoredAt' }));
  }
  return h(
    'section',
    { class: 'card record-card', 'aria-labelledby': 'record-title' },
    h('p', { class: 'card-kicker' }, t('recordType')),
    h('h2', { id: 'record-title', 'data-item': 'recordType' }, recordTypeName(doc.recordType)),
    h('dl', { class: 'summary' }, rows.filter(Boolean)),
  );
}

/** The registry's number of the record, or a plain "not disclosed" when the holder hid it. */
function registryNumberRow(doc) {
  const segment = REGISTRY_NUMBER[doc.recordType];
  if (!segment) return null;
  const path = `/${segment}`;
  const disclosed = (Array.isArray(doc.disclosed) ? doc.disclosed : []).find((f) => f.path === path);
  const name = label('segments', segment) || t('registryNumber');
  const value =
    disclosed && typeof disclosed.value === 'string'
      ? h('bdi', { class: 'registry-number', dir: 'auto' }, disclosed.value)
      : h('span', { class: 'not-disclosed', 'data-disclosed': 'false' }, t('notDisclosed'));
  return row(name, value, { 'data-item': 'registryNumber', class: 'row lead' });
}

/**
 * The agency's on-chain name, written "Arabic / English" by convention (as the certificate reads
 * it, api/certificate.py split_agency_name), as two isolated parts on their own lines, the page's
 * language first, and the agency code after. One run of mixed text would be reordered by the
 * bidi algorithm (the halves swapped around a stray "/" in an English page).
 *
 * The registry checks only a name's length, so a name set by other software than Sijill may hold
 * a direction override (U+202E could make the issuer read as another agency) or an invisible
 * character: each is written out as ⟨U+202E⟩ (showRefused), never left to act, and a note says so
 * and points to the code, which cannot hold such characters.
 */
function agencyNameParts(raw, code) {
  const codePart = h('bdi', { class: 'code', dir: 'ltr' }, `(${code})`);
  if (!raw) return [h('bdi', { class: 'code', dir: 'ltr' }, code)];
  const name = lib.showRefused(raw);
  const note =
    name === raw
      ? []
      : [' ', h('span', { class: 'agency-line agency-note', 'data-note': 'agency-name-refused' }, t('agencyNameRefused'))];
  const cut = name.indexOf(' / ');
  const halves = cut < 0 ? null : [name.slice(0, cut).trim(), name.slice(cut + 3).trim()];
  if (!halves || !halves[0] || !halves[1]) {
    const whole = h('bdi', { class: 'agency-part', dir: 'auto' }, name);
    return [h('span', { class: 'agency-line' }, whole, ' ', codePart), ...note];
  }
  const parts = [
    { text: halves[0], lang: 'ar', dir: 'rtl' },
    { text: halves[1], lang: 'en', dir: 'ltr' },
  ];
  if (state.lang === 'en') parts.reverse();
  const [first, second] = parts.map((p) => h('bdi', { class: 'agency-part', lang: p.lang, dir: p.dir }, p.text));
  return [
    h('span', { class: 'agency-line' }, first, ' ', codePart),
    ' ', // copied text keeps the two names apart
    h('span', { class: 'agency-line muted' }, second),
    ...note,
  ];
}

function fieldsCard(doc) {
  const fields = [
    ...(Array.isArray(doc.disclosed) ? doc.disclosed : []).map((f) => ({ ...f, shown: true })),
    ...(Array.isArray(doc.hidden) ? doc.hidden : []).map((f) => ({ ...f, shown: false })),
  ].sort((a, b) => compareKeys(orderKey(a.path), orderKey(b.path)));
  const rows = fields.map((f) =>
    f.shown
      ? h(
          'div',
          { class: 'row field', 'data-path': f.path },
          h('dt', {}, fieldLabel(f.path)),
          h('dd', {}, h('bdi', {}, fieldValue(f.path, f.value))),
        )
      : h(
          'div',
          { class: 'row field hidden-field', 'data-path': f.path, 'data-hidden': 'true' },
          h('dt', {}, fieldLabel(f.path)),
          h('dd', {}, h('span', { class: 'hidden-mark' }, label('ui', 'hidden') || t('hidden'))),
        ),
  );
  const anyHidden = fields.some((f) => !f.shown);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'fields-title' },
    h('h2', { id: 'fields-title' }, t('fieldsTitle')),
    anyHidden ? h('p', { class: 'muted small' }, t('hiddenNote')) : null,
    h('dl', { class: 'fields' }, rows),
  );
}

function pendingCard(pending) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'record-title' },
    h('p', { class: 'card-kicker' }, t('recordType')),
    h('h2', { id: 'record-title', 'data-item': 'recordType' }, recordTypeName(String(pending.recordType))),
    h(
      'dl',
      { class: 'summary' },
      row(t('recordId'), h('span', { class: 'code', dir: 'ltr' }, String(pending.recordId)), {
        'data-item': 'recordId',
      }),
      row(t('version'), String(pending.version), { 'data-item': 'version' }),
    ),
  );
}

/**
 * The checks as shown: a check resting on one that failed (RELIES_ON) is "not applicable", with
 * the failed check named, unless it failed itself. The report says what each check found on its
 * own (a forged field leaves the leaf's anchoring, agency and status as they were); shown as
 * passes beside a failed integrity check they would read as if most of the document were good.
 */
function presentedChecks(report) {
  const shown = new Map();
  for (const name of CHECKS) {
    const c = report.checks.find((x) => x.name === name);
    if (!c) continue;
    const broken = (RELIES_ON[name] || []).find((d) => ['fail', 'skipped'].includes(shown.get(d)?.outcome));
    if (broken && c.outcome !== 'fail') {
      const root = shown.get(broken).outcome === 'fail' ? broken : shown.get(broken).because;
      shown.set(name, { name, outcome: 'skipped', because: root, reason: null });
    } else {
      shown.set(name, { ...c, because: null });
    }
  }
  return [...shown.values()];
}

function expertsCard(report, doc) {
  const items = presentedChecks(report).map((c) =>
    h(
      'li',
      { class: `check outcome-${c.outcome}`, 'data-check': c.name, 'data-outcome': c.outcome },
      h(
        'p',
        { class: 'check-head' },
        icon({ pass: 'pass', fail: 'fail', skipped: 'skipped' }[c.outcome] || 'question'),
        h('strong', {}, t(`check.${c.name}`)),
        h('span', { class: 'check-outcome' }, ` — ${t(`outcome.${c.outcome}`)}`),
      ),
      h(
        'p',
        { class: 'check-reason', dir: 'auto' },
        c.outcome === 'skipped' ? t('skippedBecause', { check: t(`check.${c.because}`) }) : c.reason[state.lang],
      ),
    ),
  );
  const anchored = checkOf('anchored');
  const where = (anchored && anchored.outcome === 'pass' && anchored.details) || {};
  const technical = [];
  if (doc && typeof doc.recordId === 'string') {
    const id = h('bdi', { class: 'code', dir: 'ltr' }, doc.recordId);
    technical.push(row(t('recordId'), id, { 'data-item': 'recordId' }));
  }
  if (Number.isInteger(where.block)) {
    technical.push(row(t('block'), h('bdi', { dir: 'ltr' }, String(where.block)), { 'data-item': 'block' }));
  }
  technical.push(
    row(t('chainId'), h('span', { class: 'code', dir: 'ltr' }, String(config.chainId))),
    row(t('ledger'), h('span', { class: 'code hash', dir: 'ltr' }, config.ledger)),
    row(t('endpoint'), h('span', { class: 'code', dir: 'ltr' }, new URL(config.rpc, window.location.href).href)),
  );
  if (doc && typeof doc.leaf === 'string') {
    technical.push(row(t('leaf'), h('span', { class: 'code hash', dir: 'ltr' }, doc.leaf)));
  }
  if (doc && doc.anchor && typeof doc.anchor.root === 'string') {
    technical.push(row(t('root'), h('span', { class: 'code hash', dir: 'ltr' }, doc.anchor.root)));
  }
  const authority = checkOf('authority');
  if (authority && authority.details && authority.details.signer) {
    technical.push(row(t('signer'), h('span', { class: 'code hash', dir: 'ltr' }, authority.details.signer)));
  }
  return h(
    'details',
    {
      class: 'card experts',
      id: 'experts',
      open: state.expertsOpen ?? state.verdict === 'not-authentic',
      ontoggle: (event) => {
        state.expertsOpen = event.currentTarget.open;
      },
    },
    h('summary', {}, h('span', { class: 'summary-text' }, t('experts'))),
    h('p', { class: 'muted small' }, t('expertsHelp')),
    h('ol', { class: 'checks' }, items),
    h('h3', {}, t('technical')),
    h('dl', { class: 'summary technical' }, technical),
    // Asking another agency's endpoint is an expert's second opinion, not a clerk's step.
    state.text && state.verdict !== 'error' ? crossCard() : null,
  );
}

/** Why a text is not a proof file, in the parser's words (English), for experts. */
function refusalCard(refusal) {
  return h(
    'details',
    {
      class: 'card experts',
      id: 'experts',
      open: state.expertsOpen ?? false,
      ontoggle: (event) => {
        state.expertsOpen = event.currentTarget.open;
      },
    },
    h('summary', {}, h('span', { class: 'summary-text' }, t('experts'))),
    h('p', { class: 'muted small' }, t('incompleteHelp')),
    h('p', { class: 'code refusal', dir: 'ltr', lang: 'en' }, refusal),
  );
}

function crossCard() {
  const peers = config.peers.filter((p) => typeof p === 'string' && p);
  const peerSelect = peers.length
    ? h(
        'div',
        { class: 'form-row' },
        h('label', { for: 'cc-peer' }, t('crossPeer')),
        h(
          'select',
          {
            id: 'cc-peer',
            name: 'cc-peer',
            dir: 'ltr',
            onchange: (e) => {
              state.crossInput.peer = e.target.value;
            },
          },
          h('option', { value: '' }, t('crossPeerNone')),
          peers.map((p) => h('option', { value: p, selected: state.crossInput.peer === p }, p)),
        ),
      )
    : null;
  const urlInput = h('input', {
    type: 'url',
    id: 'cc-url',
    name: 'cc-url',
    dir: 'ltr',
    inputmode: 'url',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'http://…/rpc',
    oninput: (e) => {
      state.crossInput.url = e.target.value;
    },
  });
  urlInput.value = state.crossInput.url;
  return h(
    'section',
    { class: 'crosscheck', id: 'crosscheck', 'aria-labelledby': 'cc-title' },
    h('h3', { id: 'cc-title' }, t('crossTitle')),
    h('p', { class: 'muted small' }, t('crossHelp')),
    h(
      'form',
      { id: 'cc-form', novalidate: true, onsubmit: onCrossCheck },
      peerSelect,
      h('div', { class: 'form-row' }, h('label', { for: 'cc-url' }, t(peers.length ? 'crossUrl' : 'crossUrlOnly')), urlInput),
      h('button', { type: 'submit', id: 'cc-submit', class: 'button' }, t('crossButton')),
    ),
    h('div', { id: 'cc-result', class: 'cc-result', role: 'status', 'aria-live': 'polite' }),
  );
}

function renderCross() {
  const box = document.getElementById('cc-result');
  if (!box) return;
  const { cross } = state;
  box.dataset.crosscheck = cross ? cross.phase : 'idle';
  delete box.dataset.crosscheckVerdict;
  delete box.dataset.agrees;
  if (!cross) {
    box.replaceChildren();
    return;
  }
  const host = cross.url ? h('p', { class: 'code cc-url', dir: 'ltr' }, cross.url) : null;
  if (cross.phase === 'loading') {
    box.replaceChildren(h('p', {}, icon('spinner'), ' ', t('crossChecking')), host);
    return;
  }
  if (cross.phase === 'done') {
    box.dataset.crosscheckVerdict = cross.verdict;
    box.dataset.agrees = String(cross.agrees);
    box.replaceChildren(
      h('p', {}, t('crossResult')),
      host,
      h(
        'p',
        { class: `cc-verdict verdict-chip chip-${cross.verdict}` },
        icon(VERDICT_ICON[cross.verdict] || 'question'),
        h('strong', {}, t(`${cross.verdict}.title`)),
      ),
      h(
        'p',
        { class: cross.agrees ? 'cc-agree' : 'cc-disagree', 'data-agrees': String(cross.agrees) },
        icon(cross.agrees ? 'pass' : 'warn'),
        h('span', {}, t(cross.agrees ? 'crossAgrees' : 'crossDisagrees')),
      ),
    );
    return;
  }
  const vars = { got: cross.got, want: config.chainId };
  box.replaceChildren(
    h('p', { class: 'form-error', role: 'alert' }, icon('warn'), h('span', {}, t(cross.message, vars))),
    host,
  );
}

// ------------------------------------------------------------------------------ start

function setLang(lang) {
  state.lang = lang;
  try {
    window.localStorage.setItem(STORE_KEY, lang);
  } catch {
    // not remembered, still switched
  }
  const url = new URL(window.location.href);
  if (lang === 'en') {
    url.searchParams.set('lang', 'en');
  } else {
    url.searchParams.delete('lang');
  }
  window.history.replaceState(null, '', url.href);
  render();
}

async function start() {
  const match = /^\/v\/([^/]+)\/?$/i.exec(window.location.pathname);
  state.mode = match ? 'share' : 'upload';
  state.token = match ? decodeURIComponent(match[1]) : null;
  state.verdict = state.mode === 'share' ? 'loading' : 'idle';
  document.getElementById('lang-switch').addEventListener('click', () => setLang(state.lang === 'ar' ? 'en' : 'ar'));
  document.getElementById('upload-form').addEventListener('submit', onUpload);
  render();
  library().catch(() => null); // start loading the verifier while the bundle is fetched
  const labelsLoaded = loadLabels().then(render);
  if (state.mode === 'share') {
    await checkShare();
  }
  await labelsLoaded;
}

start().catch(() => {
  state.verdict = 'error';
  try {
    render();
  } catch {
    // nothing more can be shown
  }
});
