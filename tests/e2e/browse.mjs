// Drives the verify page in a real headless Chromium; pytest (tests/python/test_verify_page.py)
// starts the servers, makes the records and asserts on what this prints.
//
//   node tests/e2e/browse.mjs CASES.json [SCREENSHOT_DIR [JOBS]]
//
// CASES.json is a list of {name, url, lang?, block?, actions?, expect?}:
// - lang: the language choice already stored on the phone (localStorage), "ar" or "en";
// - block: URL parts (substrings) whose requests fail as if the network were down, until "unblock";
// - actions, run in order once the page has settled:
//     {do: "paste", text}         fill the bundle textarea
//     {do: "upload", file}        choose a file in the bundle file input
//     {do: "submit"}              press the upload form's Verify button, wait for the verdict
//     {do: "tab", until, max?}    press Tab until `until` (a selector) has the focus
//     {do: "press", key}          press a key on whatever has the focus, then let the page settle
//     {do: "type", text}          type text into whatever has the focus
//     {do: "wait"}                wait for the cross-check's answer (after a keyboard submit)
//     {do: "click", selector}     click, then let the page settle
//     {do: "crosscheck", url? | peer?}  open the details for experts, type an endpoint URL (or
//                                 pick a peer), submit, wait for the answer
//     {do: "format-times", seconds}  format unix times with the page's own module
//                                 (/web/cairo-time.js), in Arabic and English
//     {do: "unblock"}             let blocked requests through again
//     {do: "reload"}              reload the page and let it settle
//     {do: "snapshot"}            record what the page shows now, and how many requests it has made
//                                 so far (in the result's `steps`)
// - expect: ignored here (pytest's business).
// Chromium is launched once; each case runs in a fresh context (a 360 x 740 phone), JOBS (4) at a
// time, and prints one JSON line: the verdict attribute and text, the warning, <html> lang and
// dir, horizontal scrolling, console errors, page errors, every request URL (and those that
// failed), how long the first chain call took to come to a verdict, and the details pytest checks. Screenshots: SCREENSHOT_DIR/<name>.png (and <name>.step<i>.png per snapshot).

import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const SETTLE_MS = 30_000;

const [casesFile, outDir = 'build/test-output/verify-page', jobs = '4'] = process.argv.slice(2);
if (!casesFile) {
  process.stderr.write('usage: node tests/e2e/browse.mjs CASES.json [SCREENSHOT_DIR [JOBS]]\n');
  process.exit(2);
}
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
mkdirSync(outDir, { recursive: true });

/** Wait until the verdict is no longer loading (and, when `answered`, not the idle upload form). */
async function settle(page, answered = false) {
  await page.waitForFunction(
    (idleOk) => {
      const element = document.querySelector('[data-verdict]');
      const verdict = element && element.getAttribute('data-verdict');
      return Boolean(verdict) && verdict !== 'loading' && (idleOk || verdict !== 'idle');
    },
    !answered,
    { timeout: SETTLE_MS },
  );
}

/** Wait until a cross-check has an answer. */
async function waitCrossCheck(page) {
  await page.waitForFunction(
    () => {
      const box = document.querySelector('#cc-result');
      return box && !['idle', 'loading'].includes(box.getAttribute('data-crosscheck'));
    },
    null,
    { timeout: SETTLE_MS },
  );
}

async function run(page, action, blocked, requests) {
  switch (action.do) {
    case 'paste':
      await page.fill('#bundle-text', action.text);
      return null;
    case 'upload':
      await page.setInputFiles('#bundle-file', action.file);
      return null;
    case 'submit':
      await page.click('#upload-submit');
      await settle(page, true);
      return null;
    case 'tab': {
      const max = action.max ?? 10;
      for (let presses = 1; presses <= max; presses += 1) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, action.until)) {
          return { tabPresses: presses };
        }
      }
      throw new Error(`${action.until} got no focus after ${max} Tab presses`);
    }
    case 'press':
      await page.keyboard.press(action.key);
      await settle(page);
      return null;
    case 'type':
      await page.keyboard.type(action.text);
      return null;
    case 'wait':
      await waitCrossCheck(page);
      return null;
    case 'click':
      await page.click(action.selector);
      await settle(page);
      return null;
    case 'crosscheck':
      if (!(await page.evaluate(() => document.querySelector('details#experts')?.open ?? true))) {
        await page.click('details#experts > summary');
      }
      if (action.peer) {
        await page.selectOption('#cc-peer', action.peer);
      }
      if (action.url) {
        await page.fill('#cc-url', action.url);
      }
      await page.click('#cc-submit');
      await waitCrossCheck(page);
      return null;
    case 'unblock':
      blocked.length = 0;
      return null;
    case 'snapshot':
      return { ...(await page.evaluate(observe)), requestCount: requests.length };
    case 'format-times':
      // A page without the module gets {times: null} (pytest's assertion then says so).
      return {
        times: await page.evaluate(async (seconds) => {
          try {
            const { formatCairoTime } = await import('/web/cairo-time.js');
            return Object.fromEntries(['ar', 'en'].map((l) => [l, seconds.map((s) => formatCairoTime(s, l))]));
          } catch {
            return null;
          }
        }, action.seconds),
      };
    case 'reload':
      await page.reload();
      await settle(page);
      return null;
    default:
      throw new Error(`unknown action ${JSON.stringify(action)}`);
  }
}

/** What pytest looks at, read from the page. */
function observe() {
  // Text whose colour has a contrast ratio under 4.5:1 with the background it is drawn on.
  const lowContrast = () => {
    const rgb = (text) => (text.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]) => {
      const channel = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (element) => {
      for (let e = element; e; e = e.parentElement) {
        const colour = rgb(getComputedStyle(e).backgroundColor);
        if (colour.length === 3 || (colour.length === 4 && colour[3] > 0)) return colour.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const low = [];
    for (const element of document.querySelectorAll('body *')) {
      const own = [...element.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
      if (!own || element.getClientRects().length === 0) continue;
      const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) low.push(`${element.tagName}.${element.className}: ${ratio.toFixed(2)}`);
    }
    return low;
  };
  const text = (selector) => {
    const element = document.querySelector(selector);
    return element ? element.textContent.replace(/\s+/g, ' ').trim() : null;
  };
  const attr = (selector, name) => document.querySelector(selector)?.getAttribute(name) ?? null;
  const root = document.documentElement;
  const verdict = document.querySelector('[data-verdict]');
  const warning = document.querySelector('[data-warning]');
  const box = document.querySelector('#cc-result');
  const visible = (element) => Boolean(element) && element.getClientRects().length > 0;
  // What a reader sees without opening the details for experts.
  const outside = document.body.cloneNode(true);
  for (const hidden of outside.querySelectorAll('details, noscript, script, [hidden]')) hidden.remove();
  const resultItems = [...document.querySelectorAll('#result [data-item]')];
  return {
    verdict: verdict?.getAttribute('data-verdict') ?? null,
    verdictTitle: text('#verdict-title'),
    verdictText: verdict ? verdict.textContent.replace(/\s+/g, ' ').trim() : null,
    verdictRole: verdict?.getAttribute('role') ?? null,
    verdictLive: verdict?.getAttribute('aria-live') ?? null,
    warning: warning?.getAttribute('data-warning') ?? null,
    warningText: warning ? warning.textContent.replace(/\s+/g, ' ').trim() : null,
    extraText: text('#verdict-extra'),
    lang: root.lang,
    dir: root.dir,
    title: document.title,
    horizontalScroll:
      root.scrollWidth > root.clientWidth || document.body.scrollWidth > document.body.clientWidth,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    langSwitch: text('#lang-switch'),
    focused: document.activeElement?.id || document.activeElement?.tagName || null,
    successorLink: attr('#successor-link', 'href'),
    retryButton: visible(document.querySelector('#retry')),
    revocationReason: text('[data-reason="revocation"]'),
    firstItem: resultItems[0]?.getAttribute('data-item') ?? null,
    summaryItems: [...document.querySelectorAll('.record-card [data-item]')].map((e) => e.getAttribute('data-item')),
    inDetails: resultItems.filter((e) => e.closest('details')).map((e) => e.getAttribute('data-item')),
    agencyParts: [...document.querySelectorAll('[data-item="agency"] dd bdi')].map((part) => ({
      text: part.textContent.trim(),
      lang: part.getAttribute('lang'),
      dir: part.getAttribute('dir'),
      unicodeBidi: getComputedStyle(part).unicodeBidi,
      top: Math.round(part.getBoundingClientRect().top),
    })),
    agencyText: document.querySelector('[data-item="agency"] dd')?.innerText ?? null,
    // Where each character of each part of the agency's name is drawn: its line (top) and its
    // left edge, by its place in the text, so pytest can tell whether the text was reordered.
    agencyLayout: [...document.querySelectorAll('[data-item="agency"] dd bdi.agency-part')].map((part) => {
      const node = part.firstChild;
      const range = document.createRange();
      const glyphs = [];
      for (let i = 0; node && i < node.length; i += 1) {
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getBoundingClientRect();
        glyphs.push({ char: node.data[i], top: Math.round(box.top), left: box.left });
      }
      return { text: part.textContent, lang: part.getAttribute('lang'), glyphs };
    }),
    agencyNote: text('[data-note="agency-name-refused"]'),
    crossInDetails: Boolean(document.querySelector('#crosscheck')?.closest('details#experts')),
    // checkVisibility: the content of a closed <details> keeps its boxes (content-visibility).
    crossVisible: document.querySelector('#cc-url')?.checkVisibility() ?? false,
    textOutsideDetails: outside.textContent.replace(/\s+/g, ' ').trim(),
    footer: text('.footer'),
    refusal: text('.refusal'),
    items: Object.fromEntries(
      [...document.querySelectorAll('[data-item]')].map((row) => [
        row.getAttribute('data-item'),
        (row.querySelector('dd') ?? row).textContent.replace(/\s+/g, ' ').trim(),
      ]),
    ),
    fields: [...document.querySelectorAll('.field')].map((row) => ({
      path: row.getAttribute('data-path'),
      label: row.querySelector('dt').textContent.trim(),
      value: row.querySelector('dd').textContent.trim(),
      hidden: row.getAttribute('data-hidden') === 'true',
    })),
    checks: [...document.querySelectorAll('[data-check]')].map((item) => ({
      name: item.getAttribute('data-check'),
      outcome: item.getAttribute('data-outcome'),
      reason: item.querySelector('.check-reason')?.textContent.trim() ?? null,
      said: item.querySelector('.check-outcome')?.textContent.replace(/^\s*—\s*/, '').trim() ?? null,
    })),
    details: document.querySelector('details#experts') !== null,
    detailsOpen: document.querySelector('details#experts')?.open ?? null,
    crosscheck: box
      ? {
          state: box.getAttribute('data-crosscheck'),
          verdict: box.getAttribute('data-crosscheck-verdict'),
          agrees: box.getAttribute('data-agrees'),
          text: box.textContent.replace(/\s+/g, ' ').trim(),
        }
      : null,
    peers: [...document.querySelectorAll('#cc-peer option')].map((o) => o.value).filter(Boolean),
    unlabelled: [...document.querySelectorAll('input, select, textarea')]
      .filter((input) => input.type !== 'hidden' && !(input.labels && input.labels.length))
      .map((input) => input.id || input.name || input.tagName),
    lowContrast: lowContrast(),
    stackTrace: /\bat \S*\s?\(?(https?|file):\/\/\S+:\d+:\d+|\b[A-Za-z]*Error\b|\bundefined\b|\[object /.test(
      document.body.innerText,
    ),
  };
}

async function runCase(browser, spec) {
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const result = {
    name: spec.name,
    url: spec.url,
    requests: [],
    failedRequests: [],
    consoleErrors: [],
    pageErrors: [],
    steps: [],
  };
  let firstChainCall = null;
  const blocked = [...(spec.block ?? [])];
  const started = Date.now();
  try {
    if (spec.lang) {
      await context.addInitScript((lang) => {
        if (!window.sessionStorage.getItem('browse.seeded')) {
          window.localStorage.setItem('sijill.lang', lang);
          window.sessionStorage.setItem('browse.seeded', '1');
        }
      }, spec.lang);
    }
    if (blocked.length) {
      await context.route('**/*', (route) => {
        const url = route.request().url();
        const hit = blocked.some((glob) => url.includes(glob));
        return hit ? route.abort('internetdisconnected') : route.fallback();
      });
    }
    const page = await context.newPage();
    page.on('request', (request) => {
      result.requests.push(request.url());
      if (firstChainCall === null && request.url().endsWith('/rpc')) firstChainCall = Date.now();
    });
    page.on('requestfailed', (request) =>
      result.failedRequests.push({ url: request.url(), error: request.failure()?.errorText ?? null }),
    );
    page.on('console', (message) => {
      if (message.type() === 'error') {
        result.consoleErrors.push(message.text());
      }
    });
    page.on('pageerror', (error) => result.pageErrors.push(String(error)));
    await page.goto(spec.url, { waitUntil: 'domcontentloaded' });
    await settle(page);
    // From the page's first chain call to its first verdict (a hung endpoint's case).
    result.chainCallToVerdictMs = firstChainCall === null ? null : Date.now() - firstChainCall;
    for (const [index, action] of (spec.actions ?? []).entries()) {
      const step = await run(page, action, blocked, result.requests);
      result.steps.push({ do: action.do, ...(step ?? {}) });
      if (action.do === 'snapshot') {
        await page.screenshot({ path: path.join(outDir, `${spec.name}.step${index}.png`), fullPage: true });
      }
    }
    Object.assign(result, await page.evaluate(observe));
    result.settledMs = Date.now() - started;
    result.screenshot = path.join(outDir, `${spec.name}.png`);
    await page.screenshot({ path: result.screenshot, fullPage: true });
    result.ms = Date.now() - started;
  } catch (error) {
    result.failure = String(error && error.message ? error.message : error).split('\n')[0];
    const [page] = context.pages();
    if (page) {
      result.screenshot = path.join(outDir, `${spec.name}.failed.png`);
      await page.screenshot({ path: result.screenshot, fullPage: true }).catch(() => {});
    }
  } finally {
    await context.close();
  }
  return result;
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  // A few cases at a time, each in its own context; results are printed as they finish.
  const queue = [...cases];
  const worker = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      const result = await runCase(browser, spec);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(jobs)) }, worker));
} finally {
  await browser.close();
}
