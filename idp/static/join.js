/* Instant search of structures ("Se rattacher", SPEC §4.2): a typeahead over /structures/recherche.
   Without JavaScript the same input is a plain GET search form; this only adds live suggestions.
   Results are built with textContent (never innerHTML): structure names come from users. */
(function () {
  "use strict";
  var input = document.getElementById("q");
  var list = document.getElementById("search-results");
  var status = document.getElementById("search-status");
  if (!input || !list || !window.fetch) { return; }
  var searchUrl = input.getAttribute("data-search-url");
  var structureUrl = input.getAttribute("data-structure-url");
  var timer = null;
  var latest = 0;
  var active = -1;

  function hide() {
    list.hidden = true;
    list.textContent = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function say(text) { status.textContent = text; }

  function option(item, index) {
    var li = document.createElement("li");
    li.id = "search-result-" + index;
    li.setAttribute("role", "option");
    var a = document.createElement("a");
    a.href = structureUrl.replace("00000000000000", encodeURIComponent(item.siret));
    var name = document.createElement("strong");
    name.textContent = item.name;
    a.appendChild(name);
    var details = document.createElement("span");
    details.className = "muted";
    details.textContent = " " + [item.code, item.city, "SIRET " + item.siret].filter(Boolean).join(" · ");
    a.appendChild(details);
    li.appendChild(a);
    return li;
  }

  function show(items) {
    list.textContent = "";
    active = -1;
    if (!items.length) {
      hide();
      say("Aucune structure ne correspond.");
      return;
    }
    items.forEach(function (item, index) { list.appendChild(option(item, index)); });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    say(items.length === 1 ? "1 structure trouvée." : items.length + " structures trouvées.");
  }

  function search() {
    var text = input.value.trim();
    if (text.length < 2) { hide(); say(""); return; }
    var ticket = ++latest;
    fetch(searchUrl + "?q=" + encodeURIComponent(text), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 429) { throw new Error("Trop de recherches : patientez quelques secondes."); }
      if (!response.ok) { throw new Error("La recherche est indisponible : utilisez le bouton Rechercher."); }
      return response.json();
    }).then(function (items) {
      if (ticket === latest) { show(items); }
    }).catch(function (error) {
      if (ticket === latest) { hide(); say(error.message); }
    });
  }

  function move(step) {
    var options = list.querySelectorAll("[role=option]");
    if (!options.length) { return; }
    if (active >= 0) { options[active].removeAttribute("aria-selected"); }
    active = (active + step + options.length) % options.length;
    options[active].setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", options[active].id);
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") { event.preventDefault(); move(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); move(-1); }
    else if (event.key === "Escape") { hide(); }
    else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      window.location.href = list.querySelectorAll("[role=option] a")[active].href;
    }
  });
})();
