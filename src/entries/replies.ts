// `sock-client/replies`: request(), requestAll() and handle() between instances, fast replies, typed request maps.
export { handle, isReplyError, isRequestError, NO_REPLY, replies, ReplyCode, ReplyError, request, requestAll, RequestError } from '../replies'
export type { AnyRequests, Handler, HandleOptions, RepliesOptions, Reply, Req, ReqArgs, RequestAllOptions, RequestMap, RequestOptions, Res, SockRequest } from '../replies'
