/**
 * Hides what could be a credential in an address as given: the userinfo (`//user:pass@`) and the query
 * (`?token=...`). Addresses may come with one; errors and logs must never show it.
 */
export function hideSecrets(s: string): string {
  return s.replace(/(\/\/)[^/?#\s'"]*@/g, '$1***@').replace(/\?[^#\s'"]*/g, '?***')
}
