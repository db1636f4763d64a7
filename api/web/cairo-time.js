// Times on the verify page, as a clerk in Egypt reads them: Cairo's wall clock, with the zone named.
//
// The chain stores unix seconds (UTC). A clerk compares them with the dates on paper and on the
// office's clock, which are Egypt's time: Africa/Cairo, UTC+2 in winter (EET) and UTC+3 in summer
// (EEST) since Egypt brought daylight saving time back in 2023. The browser's time zone data (ICU)
// knows the rule, so the offset is never worked out here. The zone is named beside every time in
// both languages, so no one takes it for another zone's.

const ZONE = 'Africa/Cairo';

/** "7 December 2026 at 14:05:09 Cairo time (EET)" / "7 ديسمبر 2026 في 14:05:09 بتوقيت القاهرة". */
export function formatCairoTime(seconds, lang) {
  const when = new Date(seconds * 1000);
  const locale = lang === 'ar' ? 'ar-EG-u-nu-latn' : 'en-GB';
  const text = new Intl.DateTimeFormat(locale, {
    timeZone: ZONE,
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).format(when);
  return `${text} ${zoneName(when, lang)}`;
}

/** "بتوقيت القاهرة" / "Cairo time (EET)" or "(EEST)": the abbreviation tells winter from summer. */
export function zoneName(when, lang) {
  if (lang === 'ar') {
    return 'بتوقيت القاهرة';
  }
  const part = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, timeZoneName: 'short' })
    .formatToParts(when)
    .find((p) => p.type === 'timeZoneName');
  return part ? `Cairo time (${part.value})` : 'Cairo time';
}
