package io.stowage.operator.reconcile;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** A real HTTP server serving files with Range requests, as a model host (Hugging Face, S3 over https) does. */
final class ModelServer implements AutoCloseable {
    final HttpServer server;
    final Map<String, byte[]> files = new ConcurrentHashMap<>();
    final AtomicInteger requests = new AtomicInteger();

    ModelServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = ModelServer.class.getResourceAsStream(name)) {
            return in.readAllBytes();
        }
    }

    String url(String path) {
        return "http://127.0.0.1:" + server.getAddress().getPort() + path;
    }

    private void handle(HttpExchange ex) throws IOException {
        requests.incrementAndGet();
        byte[] f = files.get(ex.getRequestURI().getPath());
        if (f == null) {
            ex.sendResponseHeaders(404, -1);
            ex.close();
            return;
        }
        String range = ex.getRequestHeaders().getFirst("Range");
        int from = 0;
        int to = f.length - 1;
        int code = 200;
        if (range != null && range.startsWith("bytes=")) {
            String[] p = range.substring(6).split("-");
            from = Integer.parseInt(p[0]);
            if (p.length > 1 && !p[1].isEmpty()) {
                to = Math.min(to, Integer.parseInt(p[1]));
            }
            code = 206;
            ex.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + to + "/" + f.length);
        }
        ex.getResponseHeaders().set("Accept-Ranges", "bytes");
        ex.sendResponseHeaders(code, to - from + 1);
        ex.getResponseBody().write(f, from, to - from + 1);
        ex.close();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
