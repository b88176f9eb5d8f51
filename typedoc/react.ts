/**
 * React hooks (React 18 or later, an optional peer dependency): `SockProvider`, `useSockClient`, `useChannel` /
 * `useSignal`, `useConnectionState`, `usePresence`, each safe under StrictMode.
 * @module sock-client/react
 */
export * from '../src/react'
