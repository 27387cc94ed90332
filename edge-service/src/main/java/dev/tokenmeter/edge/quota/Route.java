package dev.tokenmeter.edge.quota;

/** Who pays for a call: the service's credit, the user's own provider key, or nobody (rejected). */
public enum Route {
    SERVICE_CREDIT, PERSONAL_KEY, REJECTED
}
