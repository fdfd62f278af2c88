import type { IncomingMessage } from 'node:http';

/** A JSON answer, or raw text with its own content type (e.g. Prometheus). */
export type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> };

export interface RouteRequest {
  /** Path parameters by name, already percent-decoded, e.g. `{ dn: "1001" }` for /dns/{dn}. */
  params: Readonly<Record<string, string>>;
  url: URL;
  req: IncomingMessage;
}

export type Handler = (r: RouteRequest) => Reply | Promise<Reply>;

export type RouteMatch =
  | { kind: 'found'; handler: Handler; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

/**
 * A tiny router: patterns like `/dns/{dn}` match one path segment per `{name}`. A path that
 * matches some route but not its method is a 405 with the methods that would do.
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method: method.toUpperCase(), segments: splitPath(pattern), handler });
    return this;
  }

  /**
   * Matches a decoded list of path segments (see `decodePath`). Routes are tried in the
   * order they were added.
   */
  match(method: string, segments: readonly string[]): RouteMatch {
    const allow = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (!params) continue;
      if (route.method === method) return { kind: 'found', handler: route.handler, params };
      allow.add(route.method);
    }
    return allow.size > 0 ? { kind: 'method-not-allowed', allow: [...allow] } : { kind: 'not-found' };
  }
}

/**
 * Splits a raw URL path into percent-decoded segments ("/dns/a%2Fb" → ["dns", "a/b"]);
 * undefined when a segment is not valid percent-encoding.
 */
export function decodePath(rawPath: string): string[] | undefined {
  const out: string[] = [];
  for (const raw of splitPath(rawPath)) {
    try {
      out.push(decodeURIComponent(raw));
    } catch (err) {
      if (err instanceof URIError) return undefined;
      throw err;
    }
  }
  return out;
}

function splitPath(path: string): string[] {
  const trimmed = path.startsWith('/') ? path.slice(1) : path;
  return trimmed === '' ? [] : trimmed.split('/');
}

function matchSegments(pattern: readonly string[], path: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] ?? '';
    const s = path[i] ?? '';
    if (p.startsWith('{') && p.endsWith('}')) {
      if (s === '') return undefined;
      params[p.slice(1, -1)] = s;
    } else if (p !== s) {
      return undefined;
    }
  }
  return params;
}
