/**
 * A small hand-drawn canvas line chart of the last MAX_POINTS cycles: queue wait (when records carry
 * one), time to first token and total cycle time on the left axis (ms), output tokens on the right.
 * The canvas's `data-points` attribute says how many cycles are plotted (tests read it).
 */
const MAX_POINTS = 60;

export interface CyclePoint {
  seq: number;
  queue?: number;
  firstToken?: number;
  total?: number;
  tokens?: number;
}

const COLORS = { queue: '#b48ead', firstToken: '#ebcb8b', total: '#88c0d0', tokens: '#a3be8c' } as const;

export class LatencyChart {
  private readonly canvas: HTMLCanvasElement;
  private readonly points: CyclePoint[] = [];

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  add(p: CyclePoint): void {
    this.points.push(p);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    this.canvas.dataset.points = String(this.points.length);
    this.draw();
  }

  private draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = w / dpr;
    const H = h / dpr;
    g.clearRect(0, 0, W, H);
    const pad = { l: 44, r: 36, t: 8, b: 18 };
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;
    const pts = this.points;
    const ms = pts.flatMap((p) => [p.queue, p.firstToken, p.total]).filter((v): v is number => typeof v === 'number');
    const toks = pts.map((p) => p.tokens).filter((v): v is number => typeof v === 'number');
    const maxMs = niceMax(Math.max(1, ...ms));
    const maxTok = niceMax(Math.max(1, ...toks));
    g.font = '10px system-ui, sans-serif';
    g.fillStyle = '#8a96a6';
    g.strokeStyle = '#2a313b';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + ph - (ph * i) / 4;
      g.beginPath();
      g.moveTo(pad.l, y);
      g.lineTo(pad.l + pw, y);
      g.stroke();
      g.textAlign = 'right';
      g.fillText(label((maxMs * i) / 4), pad.l - 4, y + 3);
      g.textAlign = 'left';
      g.fillText(label((maxTok * i) / 4), pad.l + pw + 4, y + 3);
    }
    if (pts.length === 0) {
      g.textAlign = 'center';
      g.fillText('no cycles yet', pad.l + pw / 2, pad.t + ph / 2);
      return;
    }
    const x = (i: number) => pad.l + (pts.length === 1 ? pw / 2 : (pw * i) / (MAX_POINTS - 1));
    g.textAlign = 'center';
    g.fillText(`cycle ${pts[0]!.seq}`, x(0) + 20, H - 4);
    const line = (key: keyof typeof COLORS, max: number) => {
      g.strokeStyle = COLORS[key];
      g.fillStyle = COLORS[key];
      g.lineWidth = 1.5;
      g.beginPath();
      let open = false;
      pts.forEach((p, i) => {
        const v = p[key];
        if (typeof v !== 'number') {
          open = false;
          return;
        }
        const px = x(i);
        const py = pad.t + ph - (ph * Math.min(v, max)) / max;
        if (open) g.lineTo(px, py);
        else g.moveTo(px, py);
        open = true;
      });
      g.stroke();
      pts.forEach((p, i) => {
        const v = p[key];
        if (typeof v !== 'number') return;
        g.beginPath();
        g.arc(x(i), pad.t + ph - (ph * Math.min(v, max)) / max, 2, 0, Math.PI * 2);
        g.fill();
      });
    };
    line('tokens', maxTok);
    line('queue', maxMs);
    line('firstToken', maxMs);
    line('total', maxMs);
  }
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function label(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
