/** "address:port", with an IPv6 address in brackets (for logs, events and the API). */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
