// msgpackr ships its CSP-safe build without its own type declarations: it has the main entry's API.
declare module 'msgpackr/index-no-eval' {
  export * from 'msgpackr'
}
