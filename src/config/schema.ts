import { z } from 'zod';
import { parseCidr } from '../util/address-set.js';

/**
 * The one configuration schema (SPEC §3). Types are inferred from it. Option names follow
 * the Genesys SIP Server vocabulary; units are in each option's description.
 */
const port = (min: number) => z.number().int().min(min).max(65535);
const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'expected an IPv4 or IPv6 address' });

export const tserverSchema = z
  .object({
    'sip-address': ipAddress.default('127.0.0.1').describe('address to listen on and to put in Via/Contact'),
    'sip-port': port(1).default(5060).describe('UDP and TCP port'),
    'sip-port-tls': port(0).default(0).describe('TLS port, 0 = off'),
    'sip-tls-cert': z.string().min(1).optional().describe('server certificate, PEM file path'),
    'sip-tls-key': z.string().min(1).optional().describe('server private key, PEM file path'),
    'sip-tls-ca': z.string().min(1).optional().describe('trusted CAs for peers, PEM file path'),
    'sip-tls-verify-peer': z.boolean().default(false).describe('verify certificates on connections the server opens'),
    'sip-enable-tcp-keep-alive': z.boolean().default(false).describe('SO_KEEPALIVE on every SIP TCP/TLS connection'),
    'sip-tcp-keep-alive-idle': z.number().int().min(1).max(7200).optional().describe('seconds idle before the first probe'),
    'sip-tcp-keep-alive-interval': z.number().int().min(1).max(600).optional().describe('seconds between probes'),
    'sip-tcp-keep-alive-count': z.number().int().min(1).max(127).optional().describe('unanswered probes before dead'),
    'sip-tcp-user-timeout': z.number().int().min(0).max(600_000).default(0).describe('TCP_USER_TIMEOUT in ms, 0 = OS'),
    'sip-tcp-connect-timeout': z.number().int().min(100).max(60_000).default(5000).describe('ms to open a TCP/TLS connection'),
    'sip-invite-timeout': z.number().int().min(0).max(34).default(0).describe('timer B in seconds, 0 = 64*T1 (32 s)'),
    'sip-max-message-size': z.number().int().min(1024).max(1_048_576).default(65535).describe('bytes'),
    'sip-max-connections': z.number().int().min(1).max(1_000_000).default(100_000).describe('accepted TCP/TLS connections'),
    'sip-tcp-workers': z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(0)
      .describe('worker processes that hold accepted TCP/TLS connections, 0 = this process holds them'),
    'sip-t1': z.number().int().min(50).max(10_000).default(500).describe('RFC 3261 T1 in ms (extension)'),
    'sip-t2': z.number().int().min(500).max(60_000).default(4000).describe('RFC 3261 T2 in ms (extension)'),
    'sip-t4': z.number().int().min(500).max(60_000).default(5000).describe('RFC 3261 T4 in ms (extension)'),
    'registrar-default-expires': z.number().int().min(60).max(86_400).default(3600).describe('seconds'),
    'registrar-min-expires': z.number().int().min(1).max(3600).default(60).describe('seconds'),
    'registrar-flow-timer': z.number().int().min(0).max(3600).default(0).describe('seconds, Flow-Timer to outbound phones on TCP/TLS (RFC 5626), 0 = not sent'),
    'http-address': ipAddress.default('127.0.0.1').describe('control API address'),
    'http-port': port(0).default(8080).describe('control API port, 0 = off'),
    'http-token': z
      .string()
      .min(16, { error: 'expected at least 16 characters (a token anybody can guess protects nothing)' })
      .optional()
      .describe('bearer token for the control API'),
    'sip-auth-algorithms': z
      .array(z.enum(['SHA-256', 'MD5']))
      .min(1)
      .default(['SHA-256', 'MD5'])
      .describe('digest algorithms offered in 401/407 challenges, preferred first (RFC 8760)'),
    'sip-trusted-peers': z
      .array(z.string().refine((s) => parseCidr(s) !== undefined, { error: 'expected an IPv4 or IPv6 address or CIDR, e.g. 192.0.2.0/24' }))
      .default(['127.0.0.0/8', '::1'])
      .describe('sources whose requests need no digest credentials (besides trunk and voip-service contacts)'),
    'sip-source-max-rate': z.number().int().min(0).max(1_000_000).default(200).describe('messages per second one source may send, 0 = no limit'),
    'sip-source-max-auth-failures': z.number().int().min(0).max(10_000).default(10).describe('failed authentications per minute one source may have, 0 = no limit'),
    'sip-source-max-connections': z.number().int().min(0).max(1_000_000).default(1000).describe('TCP/TLS connections one source may hold, 0 = no limit'),
    'sip-tcp-first-message-timeout': z.number().int().min(0).max(3600).default(30).describe('seconds an accepted TCP/TLS connection may go without a complete message after it opened, 0 = no limit'),
    'sip-tcp-stalled-message-timeout': z.number().int().min(0).max(3600).default(20).describe('seconds a TCP/TLS connection may hold part of a message, 0 = no limit'),
    'sip-source-max-pending-bytes': z.number().int().min(0).max(1_073_741_824).default(2_097_152).describe('bytes one source may hold in incomplete messages over all its connections, 0 = no limit'),
    'sip-oos-recovery-interval': z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(10)
      .describe('seconds between OPTIONS to a DN (without oos-check) that went out of service while still registered, until it answers; 0 = back only when it registers again'),
    'sip-ban-time': z.number().int().min(1).max(86_400).default(300).describe('seconds a source over a limit stays banned'),
    'sip-drop-user-agents': z
      .array(z.string().min(1))
      .default(['friendly-scanner', 'sipvicious', 'sipcli', 'sip-scan', 'vaxsipuseragent', 'pplsip', 'iwar', 'sundayddr', 'sivus', 'smap'])
      .describe('requests whose User-Agent contains one of these (any case) are dropped and their source banned'),
    'hep-address': ipAddress.optional().describe('HEPv3 collector (Homer, sngrep) sent a copy of every SIP message over UDP; none = off'),
    'hep-port': port(1).default(9060).describe('HEPv3 collector UDP port'),
    'hep-capture-id': z.number().int().min(0).max(4_294_967_295).default(2001).describe('HEP capture agent id (chunk 12)'),
    'hep-password': z.string().min(1).max(255).optional().describe('HEP auth key (chunk 14), 1-255 characters'),
    store: z
      .string()
      .regex(/^(sqlite:.+|memory:|postgres(ql)?:\/\/.+)$/, { error: 'expected "sqlite:PATH", "memory:" or "postgres://USER@HOST:PORT/DB"' })
      .default('sqlite:sip-server.db')
      .describe('where registrations and call records live'),
    'instance-name': z
      .string()
      .regex(/^[A-Za-z0-9._:@-]{1,64}$/, { error: 'expected 1-64 letters, digits or . _ : @ -' })
      .optional()
      .describe('this instance on a shared store (default HOSTNAME:sip-port)'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o['sip-port-tls'] > 0 && (!o['sip-tls-cert'] || !o['sip-tls-key'])) {
      ctx.addIssue({ code: 'custom', path: ['sip-tls-cert'], message: 'sip-port-tls is set: sip-tls-cert and sip-tls-key are required' });
    }
    if (o['http-port'] > 0 && !o['http-token'] && !isLoopback(o['http-address'])) {
      ctx.addIssue({ code: 'custom', path: ['http-token'], message: 'required when http-address is not a loopback address' });
    }
  });

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

export const dnSchema = z
  .object({
    type: z.enum(['extension', 'trunk', 'voip-service']),
    contact: z.string().regex(/^(\*|sips?:\S+)$/, { error: 'expected "*" or a SIP URI' }),
    password: z.string().min(1).optional(),
    'oos-check': z.number().int().min(0).max(300).default(0).describe('seconds between OPTIONS checks, 0 = off'),
    'oos-force': z.number().int().min(0).max(30).default(0).describe('seconds without response before out of service'),
    prefix: z.string().regex(/^\d+$/, { error: 'expected digits' }).optional(),
    priority: z.number().int().min(0).max(100).default(0),
    'service-type': z.enum(['softswitch', 'msml', 'recorder', 'other']).optional(),
    'authenticate-requests': z
      .array(z.enum(['register', 'invite']))
      .default(['register', 'invite'])
      .describe('with a password: which requests from this DN are challenged'),
  })
  .strict();

export const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .strict();

export const configSchema = z
  .object({
    TServer: tserverSchema.default(() => tserverSchema.parse({})),
    log: logSchema.default(() => logSchema.parse({})),
    dns: z.record(z.string().regex(/^[A-Za-z0-9._+-]+$/, { error: 'expected a DN number or name' }), dnSchema).default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type TServerOptions = Config['TServer'];
export type DnOptions = z.infer<typeof dnSchema>;
