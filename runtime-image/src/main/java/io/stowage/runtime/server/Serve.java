package io.stowage.runtime.server;

/**
 * The {@code serve} command as reached from the plain command jar: the server needs the Quarkus application, so this
 * says how to start it (./stowage serve runs target/quarkus-app/quarkus-run.jar directly).
 */
public final class Serve {
    private Serve() {}

    public static int run(String[] args) {
        System.err.println("serve: the server runs from the Quarkus application; start it with ./stowage serve "
                + String.join(" ", args) + " or java -jar runtime-image/target/quarkus-app/quarkus-run.jar serve "
                + String.join(" ", args));
        return 2;
    }
}
