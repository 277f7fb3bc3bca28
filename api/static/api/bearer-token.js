// The browsable API's token box (rest_framework/api.html). The token is kept in this tab's
// sessionStorage, so it outlives the page (DRF's forms replace the document with the answer)
// but not the tab, and is sent as `Authorization: Bearer <token>` with the requests the page's
// forms make through jQuery (DRF's ajax-form.js), to this server only.
(function () {
  "use strict";
  var KEY = "sumservice.bearerToken";
  // RFC 6750's b64token, which a JWT is: anything else cannot go in the header (a curly quote
  // or an ellipsis would make the browser refuse to send the request at all).
  var BEARER_TOKEN = /^[A-Za-z0-9\-._~+\/]+=*$/;
  var QUOTES = /^["'\u2018\u2019\u201c\u201d]+|["'\u2018\u2019\u201c\u201d]+$/g;

  function token() {
    return window.sessionStorage.getItem(KEY) || "";
  }

  function unquoted(value) {
    return $.trim($.trim(value).replace(QUOTES, ""));
  }

  // Keeps the token; returns what is wrong with it, or "" when nothing is.
  function keep(value) {
    // A pasted "Bearer <token>", or one in quotes (the prefix inside them or not), is taken as
    // the token.
    value = unquoted(unquoted(value).replace(/^bearer\s+/i, ""));
    if (value && BEARER_TOKEN.test(value)) {
      window.sessionStorage.setItem(KEY, value);
      return "";
    }
    window.sessionStorage.removeItem(KEY);
    return value
      ? "Not kept: a token is letters, digits and -._~+/ only, as POST /auth's access_token" +
          " is. Paste it again, whole."
      : "";
  }

  function sameOrigin(url) {
    return new URL(url, document.baseURI).origin === window.location.origin;
  }

  $(document).ajaxSend(function (event, xhr, settings) {
    if (BEARER_TOKEN.test(token()) && sameOrigin(settings.url)) {
      xhr.setRequestHeader("Authorization", "Bearer " + token());
    }
  });

  $(function () {
    var input = $("#bearer-token");
    var status = $("#bearer-token-status");

    // What the box holds is left as typed when it is not a token, for the person to mend.
    function show(problem) {
      if (problem) {
        status.text(problem);
        return;
      }
      input.val(token());
      status.text(
        token()
          ? "The forms below send this token as Authorization: Bearer."
          : "No token: POST /auth for one, then paste its access_token here."
      );
    }

    $("#bearer-token-form").on("submit", function (event) {
      event.preventDefault();
      show(keep(input.val()));
    });
    // A token pasted in and left there is meant to be used: taken when the box loses focus,
    // as it does when a form's button below is pressed.
    input.on("change", function () {
      show(keep(input.val()));
    });
    $("#bearer-token-forget").on("click", function () {
      keep("");
      show();
    });
    $("#keep-token").on("click", function () {
      keep($(this).attr("data-bearer-token"));
      $(this).text("Kept: /sum's page sends it").prop("disabled", true);
    });
    show();
  });
})();
