import NIOCore

extension SocketAddress {
    /// The peer as logs and the access log name it: `127.0.0.1:54321`, `[::1]:54321`, or a
    /// Unix socket's path. NIO's `description` (`[IPv4]127.0.0.1/127.0.0.1:54321`) repeats the
    /// address and is awkward to read or to parse.
    var peerText: String {
        switch self {
        case .v4:
            return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6:
            return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket:
            return pathname ?? "unix"
        }
    }
}
