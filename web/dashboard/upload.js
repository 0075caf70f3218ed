// The upload form and the live transcript of the job the page follows: its state, progress and
// segments as they arrive (the stream's `state`, `progress` and `segment` events), then buttons
// that download the result as txt, srt, vtt or json. A job that completed before the page
// followed it (the stream replays no segments of a finished job) has its segments read from its
// verbose_json result instead.
import { downloadResult, getJson, submitJob } from './api.js';
import { h, setAttr, setText } from './dom.js';
import { FINAL_STATES, mediaTime, percent } from './format.js';

const FORMATS = [['text', 'txt'], ['srt', 'srt'], ['vtt', 'vtt'], ['json', 'json']];

export class UploadPanel {
  // els: {form, status, live, liveTitle, liveState, liveProgress, segments, downloads};
  // onSubmitted(job): the app follows the new job.
  constructor(els, { onSubmitted, onError }) {
    this.els = els;
    this.onSubmitted = onSubmitted;
    this.onError = onError;
    this.job = null;
    this.seen = new Set();
    els.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
  }

  setModels(ids) {
    const select = this.els.form.elements.model;
    const previous = select.value;
    select.replaceChildren(...ids.map((id) => h('option', { value: id }, id)));
    if (ids.includes(previous)) select.value = previous;
    select.disabled = ids.length === 0;
    if (ids.length === 0) select.append(h('option', { value: '' }, 'no models installed'));
  }

  async submit() {
    const { form, status } = this.els;
    const file = form.elements.file.files[0];
    if (!file) {
      setText(status, 'Choose an audio or video file first.');
      status.dataset.kind = 'error';
      form.elements.file.focus();
      return;
    }
    const data = new FormData();
    data.append('file', file, file.name);
    data.append('model', form.elements.model.value);
    const language = form.elements.language.value.trim();
    if (language) data.append('language', language);
    data.append('priority', form.elements.priority.value);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    setText(status, `Uploading ${file.name}…`);
    status.dataset.kind = 'info';
    try {
      const job = await submitJob(data);
      setText(status, `Submitted ${file.name} as job ${job.id}.`);
      this.follow(job);
      this.onSubmitted(job);
    } catch (err) {
      setText(status, `Upload failed: ${err.message}`);
      status.dataset.kind = 'error';
      this.onError(err);
    } finally {
      button.disabled = false;
    }
  }

  // Shows `job` in the live panel (empty segment list; the stream replays what exists).
  follow(job) {
    const { live, liveTitle, segments, downloads } = this.els;
    this.job = { ...job };
    this.seen.clear();
    live.hidden = false;
    setAttr(live, 'data-job-id', job.id);
    setText(liveTitle, `Live transcript: ${job.filename || job.id}`);
    segments.replaceChildren();
    downloads.replaceChildren();
    downloads.hidden = true;
    this.showState(job.state, null);
  }

  following() {
    return this.job ? this.job.id : null;
  }

  finished() {
    return !!this.job && FINAL_STATES.has(this.job.state);
  }

  // A job object for the followed job (from a `state` event or a snapshot row).
  onJob(job) {
    if (!this.job || job.id !== this.job.id) return;
    const changed = job.state !== this.job.state;
    Object.assign(this.job, job);
    if (changed || job.state === 'failed') this.showState(job.state, job.progress ?? null);
  }

  onProgress(p) {
    if (!this.job || p.job_id !== this.job.id) return;
    if (p.state && p.state !== this.job.state) {
      this.job.state = p.state;
    }
    this.showState(this.job.state, p.percent);
  }

  onSegment(e) {
    if (!this.job || e.job_id !== this.job.id || !e.segment) return;
    const s = e.segment;
    // By time and text, not id: the stream's and the result's segments must match each other.
    const key = `${Number(s.start).toFixed(2)}|${(s.text || '').trim()}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const item = h('li', { 'data-testid': 'segment' },
      h('span', { class: 'ts' }, `${mediaTime(s.start)}–${mediaTime(s.end)}`),
      h('span', { class: 'seg-text' }, (s.text || '').trim()));
    // Keep time order even if a replay and a live event cross.
    const after = [...this.els.segments.children].find((li) => li.start > s.start);
    item.start = s.start;
    this.els.segments.insertBefore(item, after || null);
    if (this.els.segments.scrollHeight - this.els.segments.scrollTop < this.els.segments.clientHeight + 80) {
      this.els.segments.scrollTop = this.els.segments.scrollHeight;
    }
  }

  showState(state, pct) {
    const { liveState, liveProgress, downloads, live } = this.els;
    setAttr(live, 'data-state', state);
    let text = state;
    if (state === 'failed' && this.job.error) text = `failed: ${this.job.error.message}`;
    setText(liveState, text);
    setAttr(liveState, 'data-state', state);
    if (state === 'completed') pct = 100;
    if (typeof pct === 'number') {
      liveProgress.value = pct;
      setAttr(liveProgress, 'aria-valuetext', percent(pct));
    } else if (!FINAL_STATES.has(state)) {
      liveProgress.removeAttribute('value');
    }
    if (state === 'completed' && downloads.hidden) {
      this.showDownloads();
      if (this.els.segments.children.length === 0) this.loadSegments(this.job.id);
    }
  }

  async loadSegments(id) {
    try {
      const result = await getJson(`/v1/jobs/${encodeURIComponent(id)}/result?format=verbose_json`);
      if (!this.job || this.job.id !== id) return;
      for (const segment of result.segments || []) this.onSegment({ job_id: id, segment });
    } catch (err) {
      this.onError(err);
    }
  }

  showDownloads() {
    const { downloads } = this.els;
    const job = this.job;
    downloads.replaceChildren(h('span', { class: 'downloads-label' }, 'Download:'),
      ...FORMATS.map(([format, ext]) => {
        const b = h('button', { type: 'button', class: 'button small secondary', 'data-format': ext,
                                'aria-label': `Download the transcript as ${ext}` }, ext);
        b.addEventListener('click', async () => {
          b.disabled = true;
          try {
            await downloadResult(job, format);
          } catch (err) {
            this.onError(err);
          } finally {
            b.disabled = false;
          }
        });
        return b;
      }));
    downloads.hidden = false;
  }
}
