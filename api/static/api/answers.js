// DRF's forms (ajax-form.js) show an HTML answer (the browsable page) in place, and for any
// other, a JSON refusal made before DRF (a body over the limit, a timeout) or a request the
// browser could not send, load the page again with a GET, which on a POST-only endpoint shows
// only a 405. That answer is kept here for the next page of this tab, which shows it above the
// form, whose document the person can then send again.
(function () {
  "use strict";
  var KEY = "sumservice.lastAnswer";

  $(document).ajaxComplete(function (event, xhr, settings) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.toLowerCase().indexOf("text/html") === 0) {
      return;
    }
    window.sessionStorage.setItem(
      KEY,
      JSON.stringify({
        method: settings.type,
        path: new URL(settings.url, document.baseURI).pathname,
        status: xhr.status,
        statusText: xhr.statusText,
        body: (xhr.responseText || "").slice(0, 4000),
      })
    );
  });

  $(function () {
    var kept = window.sessionStorage.getItem(KEY);
    window.sessionStorage.removeItem(KEY);
    if (!kept) {
      return;
    }
    var answer = JSON.parse(kept);
    if (answer.path !== window.location.pathname) {
      return;
    }
    var said = answer.status
      ? answer.method + " " + answer.path + " answered " + answer.status + " " + answer.statusText
      : answer.method + " " + answer.path + " was not sent: " + answer.statusText;
    var box = $('<div id="last-answer" class="alert alert-danger" role="alert"></div>');
    box.append($("<strong></strong>").text(said));
    if (answer.body) {
      box.append($("<pre></pre>").text(answer.body));
    }
    // Below the page's title and description, where the answer to a POST is shown.
    box.css("clear", "both").insertBefore($(".content-main .request-info").first());
  });
})();
