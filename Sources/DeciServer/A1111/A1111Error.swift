// Errors on /sdapi/v1 in A1111's shape: {"error": kind, "detail": message, "body": "", "errors":
// message}, plus the field it is about.
import DeciDiffusion
import Foundation
import Hummingbird

struct A1111Error: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var kind: String
    var message: String
    var field: String?
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: JSONValue] = ["error": .string(kind), "detail": .string(message), "body": .string(""), "errors": .string(message)]
        if let field { object["field"] = .string(field) }
        var headers = self.headers
        headers[.contentType] = "application/json"
        let data = try JSONEncoder().encode(object)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    init(_ status: HTTPResponse.Status, kind: String, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        (self.status, self.kind, self.message, self.field, self.headers) = (status, kind, message, field, headers)
    }

    init(_ e: FieldError) { self.init(.unprocessableContent, kind: "ValidationError", e.description, field: e.field) }

    init(_ e: ServiceError) {
        let api = APIError(e)
        self.init(api.status, kind: api.status == .tooManyRequests ? "QueueFull" : "HTTPException", api.message, field: api.field, headers: api.headers)
    }
}
